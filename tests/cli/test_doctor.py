"""`agent-runtime doctor` against the mock vLLM server, well configured and misconfigured."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agent_runtime.cli import cli
from agent_runtime.testing import VLLM_0_33, Fault, MockVLLM, Reply, call, fault
from tests import helpers

ROOT = helpers.ROOT
MODEL = "openai/gpt-oss-20b"
GOOD = Reply(reasoning="The user wants the time; call get_time.", calls=[call("get_time")])
SERVE = (
    "vllm serve openai/gpt-oss-20b --tool-call-parser openai --enable-auto-tool-choice "
    "--reasoning-parser openai_gptoss"
)
PARSER_FIX = "start vLLM with --tool-call-parser openai --enable-auto-tool-choice"
REASONING_FIX = (
    "gpt-oss on vLLM always returns its reasoning: start vLLM with --reasoning-parser "
    "openai_gptoss and upgrade vLLM (>= 0.10.2)"
)

Factory = Callable[..., MockVLLM]


def write_config(
    tmp_path: Path, url: str, *, api: str = "responses", extra: str = "", backends: str = ""
) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "backends:\n"
        "  local:\n"
        f"    api: {api}\n"
        f"    base_url: {url}\n"
        f"    model: {MODEL}\n"
        "    max_retries: 0\n"
        f"{extra}"
        f"{backends}"
        "agents:\n"
        "  clock:\n"
        "    instructions: Tell the time.\n"
        "    backend: local\n"
    )
    return path


def doctor(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", "-c", str(config), *args])


def header(url: str, api: str = "responses", name: str = "local", model: str = MODEL) -> str:
    return f"Backend '{name}' (api: {api}, model: {model}) at {url}\n"


def reachable(mock: MockVLLM) -> str:
    return (
        f"✓ reachable — connected to {mock.root_url}\n"
        "✓ health — GET /health → 200\n"
        "✓ version — vLLM 0.33.0\n"
        f"✓ model — {MODEL} is served (max_model_len 131072)\n"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def passing(mock: MockVLLM, api: str = "responses") -> str:
    return (
        header(mock.url, api)
        + reachable(mock)
        + "✓ responses tool call — function_call get_time({})\n"
        "✓ chat tool call — tool_calls get_time({})\n"
        "✓ reasoning — responses: a reasoning item with reasoning_text; chat: message.reasoning\n"
        "All 7 checks passed.\n"
    )


# -- a well configured server ---------------------------------------------------------------


def test_all_checks_pass(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory([GOOD, GOOD])
    result = doctor(write_config(tmp_path, mock.url))
    assert result.exit_code == 0
    assert result.output == passing(mock)
    mock.assert_script_consumed()
    assert [(r.method, r.path) for r in mock.requests] == [
        ("GET", "/health"),
        ("GET", "/version"),
        ("GET", "/v1/models"),
        ("POST", "/v1/responses"),
        ("POST", "/v1/chat/completions"),
    ]
    assert {r.headers["authorization"] for r in mock.requests} == {"Bearer EMPTY"}
    responses, chat = (r.json for r in mock.model_requests)
    tool = {
        "type": "function",
        "name": "get_time",
        "description": "Get the current time.",
        "parameters": {
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        },
    }
    assert responses == {
        "model": MODEL,
        "input": "What time is it? Use the get_time tool.",
        "instructions": (
            "This is a connectivity check. Call the get_time tool once; do not answer in text."
        ),
        "max_output_tokens": 2048,
        "reasoning": {"effort": "low"},
        "store": False,
        "tools": [{**tool, "strict": True}],
    }
    assert chat["messages"][0]["role"] == "system"
    assert chat["tools"] == [
        {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
    ]
    assert chat["reasoning_effort"] == "low"


def test_chat_backend_passes_and_runs_as_a_subprocess(
    tmp_path: Path, mock_vllm_factory: Factory
) -> None:
    mock = mock_vllm_factory(default=GOOD)
    config = write_config(tmp_path, mock.url, api="chat_completions")
    process = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "doctor", "-c", str(config), "--timeout", "10"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert (process.returncode, process.stderr) == (0, "")
    assert process.stdout == passing(mock, "chat_completions")


# -- misconfigured servers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "mark", "fix", "summary", "code"),
    [
        pytest.param(
            "responses",
            "!",
            f"{PARSER_FIX} (needed only by backends with api: chat_completions)",
            "Required checks passed; 1 warning.",
            0,
            id="responses-backend-warns",
        ),
        pytest.param(
            "chat_completions", "✗", PARSER_FIX, "1 check failed.", 1, id="chat-backend-fails"
        ),
    ],
)
def test_chat_tool_parser_missing(
    tmp_path: Path,
    mock_vllm_factory: Factory,
    api: str,
    mark: str,
    fix: str,
    summary: str,
    code: int,
) -> None:
    mock = mock_vllm_factory(default=GOOD, profile=VLLM_0_33.but(chat_tool_parser=False))
    result = doctor(write_config(tmp_path, mock.url, api=api))
    assert result.output == (
        header(mock.url, api)
        + reachable(mock)
        + "✓ responses tool call — function_call get_time({})\n"
        f"{mark} chat tool call — no tool_calls (finish_reason 'stop', content null)\n"
        f"  fix: {fix}\n"
        "✓ reasoning — responses: a reasoning item with reasoning_text; chat: message.reasoning\n"
        f"{summary}\n"
    )
    assert result.exit_code == code


def test_tool_json_in_the_text(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    text = '{"name": "get_time", "arguments": {}}'
    mock = mock_vllm_factory(default=Reply(reasoning="Call get_time.", final=text))
    result = doctor(write_config(tmp_path, mock.url))
    assert result.output == (
        header(mock.url)
        + reachable(mock)
        + f"✗ responses tool call — no function_call; the call is in the answer text: '{text}'\n"
        "  fix: the server did not parse the model's tool call: serve gpt-oss on vLLM >= 0.10.2 "
        "(its Responses API parses gpt-oss calls with no extra flags)\n"
        f"! chat tool call — no tool_calls; the call is in the content: '{text}'\n"
        f"  fix: {PARSER_FIX} (needed only by backends with api: chat_completions)\n"
        "✓ reasoning — responses: a reasoning item with reasoning_text; chat: message.reasoning\n"
        "1 check failed, 1 warning.\n"
    )
    assert result.exit_code == 1


def test_model_answers_in_text(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=Reply(reasoning="Just answer.", final="It is noon."))
    result = doctor(write_config(tmp_path, mock.url, api="chat_completions"))
    assert result.output == (
        header(mock.url, "chat_completions")
        + reachable(mock)
        + "! responses tool call — no function_call; the model answered in text: 'It is noon.'\n"
        "  fix: gpt-oss calls a tool it is told to call: make sure the server runs gpt-oss, and "
        "run doctor again (a sampled model may skip a call now and then) "
        "(needed only by backends with api: responses)\n"
        "✗ chat tool call — no tool_calls (finish_reason 'stop', content 'It is noon.')\n"
        f"  fix: {PARSER_FIX}\n"
        "✓ reasoning — responses: a reasoning item with reasoning_text; chat: message.reasoning\n"
        "1 check failed, 1 warning.\n"
    )
    assert result.exit_code == 1


def test_reasoning_missing(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=Reply(calls=[call("get_time")]))
    result = doctor(write_config(tmp_path, mock.url))
    assert result.output == (
        header(mock.url) + reachable(mock) + "✓ responses tool call — function_call get_time({})\n"
        "✓ chat tool call — tool_calls get_time({})\n"
        "✗ reasoning — responses: no reasoning item with reasoning_text; "
        "chat: no reasoning in the message\n"
        f"  fix: {REASONING_FIX}\n"
        "1 check failed.\n"
    )
    assert result.exit_code == 1


LEGACY = "✗ reasoning — responses: a reasoning item with reasoning_text; " + (
    "chat: message.reasoning_content (vLLM < 0.11.1)\n"
)


@pytest.mark.parametrize(
    ("api", "extra", "lines", "code"),
    [
        pytest.param(
            "chat_completions",
            "",
            LEGACY + "  fix: set `reasoning_field: reasoning_content` on backend 'local' so "
            "reasoning goes back where this vLLM reads it, or upgrade vLLM\n"
            "1 check failed.\n",
            1,
            id="chat-backend-must-set-reasoning_field",
        ),
        pytest.param(
            "chat_completions",
            "    reasoning_field: reasoning_content\n",
            LEGACY.replace("✗", "✓") + "All 7 checks passed.\n",
            0,
            id="chat-backend-with-reasoning_field",
        ),
        pytest.param(
            "responses",
            "",
            LEGACY.replace("✗", "!")
            + "  fix: set `reasoning_field: reasoning_content` on backend 'local' so "
            "reasoning goes back where this vLLM reads it, or upgrade vLLM "
            "(needed only by backends with api: chat_completions)\n"
            "Required checks passed; 1 warning.\n",
            0,
            id="responses-backend-warns",
        ),
    ],
)
def test_reasoning_content_of_old_vllm(
    tmp_path: Path, mock_vllm_factory: Factory, api: str, extra: str, lines: str, code: int
) -> None:
    profile = VLLM_0_33.but(chat_reasoning_field="reasoning_content")
    mock = mock_vllm_factory(default=GOOD, profile=profile)
    result = doctor(write_config(tmp_path, mock.url, api=api, extra=extra))
    assert result.output == (
        header(mock.url, api)
        + reachable(mock)
        + "✓ responses tool call — function_call get_time({})\n"
        "✓ chat tool call — tool_calls get_time({})\n" + lines
    )
    assert result.exit_code == code


def test_reasoning_field_set_for_a_new_vllm(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=GOOD)
    extra = "    reasoning_field: reasoning_content\n"
    result = doctor(write_config(tmp_path, mock.url, api="chat_completions", extra=extra))
    assert result.output.splitlines()[-3:] == [
        "✗ reasoning — responses: a reasoning item with reasoning_text; chat: message.reasoning",
        "  fix: remove `reasoning_field: reasoning_content` from backend 'local': "
        "this vLLM reads `reasoning`",
        "1 check failed.",
    ]
    assert result.exit_code == 1


def test_model_not_served(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=GOOD, served_model_names=["gpt-oss", "oss"])
    config = write_config(tmp_path, mock.url)
    result = doctor(config)
    assert result.output == (
        header(mock.url) + f"✓ reachable — connected to {mock.root_url}\n"
        "✓ health — GET /health → 200\n"
        "✓ version — vLLM 0.33.0\n"
        f"✗ model — '{MODEL}' is not served; the server serves 'gpt-oss', 'oss'\n"
        "  fix: set `model:` of backend 'local' to 'gpt-oss' or 'oss' (or pass --model), "
        f"or start vLLM with --served-model-name {MODEL}\n"
        "- responses tool call — not run: the model is not served\n"
        "- chat tool call — not run: the model is not served\n"
        "- reasoning — not run: the model is not served\n"
        "1 check failed, 3 not run.\n"
    )
    assert result.exit_code == 1
    assert mock.model_requests == []
    # --model points the check at a served name.
    result = doctor(config, "--model", "gpt-oss")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(header(mock.url, model="gpt-oss"))
    assert "✓ model — gpt-oss is served (max_model_len 131072)\n" in result.output


def test_unreachable_server(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = write_config(tmp_path, url)
    result = doctor(config)
    assert result.output == (
        header(url) + f"✗ reachable — cannot connect to {url}: All connection attempts failed\n"
        f"  fix: start vLLM ({SERVE}), or point backend 'local' at a running server "
        f"(`base_url:` in {config}, or --base-url)\n"
        "- health — not run: server unreachable\n"
        "- version — not run: server unreachable\n"
        "- model — not run: server unreachable\n"
        "- responses tool call — not run: server unreachable\n"
        "- chat tool call — not run: server unreachable\n"
        "- reasoning — not run: server unreachable\n"
        "1 check failed, 6 not run.\n"
    )
    assert result.exit_code == 3


@pytest.mark.parametrize(
    ("args", "why"),
    [
        pytest.param((), "the server wants an API key (api_key is EMPTY)", id="no-key"),
        pytest.param(("--api-key", "sk-wrong-1234"), "the API key was rejected", id="wrong-key"),
    ],
)
def test_api_key_rejected(
    tmp_path: Path, mock_vllm_factory: Factory, args: tuple[str, ...], why: str
) -> None:
    mock = mock_vllm_factory(default=GOOD, api_key="sekrit")
    config = write_config(tmp_path, mock.url)
    result = doctor(config, *args)
    assert result.output == (
        header(mock.url) + f"✓ reachable — connected to {mock.root_url}\n"
        "✓ health — GET /health → 200\n"
        "✓ version — vLLM 0.33.0\n"
        f"✗ model — GET /v1/models → 401: {why}\n"
        f"  fix: set `api_key:` of backend 'local' in {config} (or pass --api-key) to a key "
        "vLLM was started with (vllm serve ... --api-key KEY)\n"
        "- responses tool call — not run: the API key was rejected\n"
        "- chat tool call — not run: the API key was rejected\n"
        "- reasoning — not run: the API key was rejected\n"
        "1 check failed, 3 not run.\n"
    )
    assert result.exit_code == 1


def test_api_key_from_the_command_line(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=GOOD, api_key="sekrit")
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    result = doctor(config, "--base-url", mock.url, "--api-key", "sekrit")
    assert result.exit_code == 0
    assert result.output == passing(mock)
    assert {r.headers["authorization"] for r in mock.requests} == {"Bearer sekrit"}


def test_server_errors(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=fault(status=500))
    result = doctor(write_config(tmp_path, mock.url))
    fix = (
        "the server failed: see the vLLM log (a HarmonyError there is vllm#23567: retry, "
        "keep vLLM and openai-harmony current)"
    )
    assert result.output == (
        header(mock.url)
        + reachable(mock)
        + "✗ responses tool call — POST /v1/responses → 500: Internal server error\n"
        f"  fix: {fix}\n"
        "! chat tool call — POST /v1/chat/completions → 500: Internal server error\n"
        f"  fix: {fix} (needed only by backends with api: chat_completions)\n"
        "- reasoning — not run: no answer to look at\n"
        "1 check failed, 1 warning, 1 not run.\n"
    )
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("reply", "lines"),
    [
        pytest.param(
            fault(empty_incomplete=True),
            [
                "✗ responses tool call — no function_call and no text (status 'incomplete')",
                "  fix: the model produced nothing usable: see the vLLM log",
                "! chat tool call — no tool_calls (finish_reason 'length')",
                "  fix: the model stopped before calling the tool: see the vLLM log "
                "(needed only by backends with api: chat_completions)",
            ],
            id="empty-output",
        ),
        pytest.param(
            Reply(reasoning="Weather!", calls=[call("get_weather", city="Oslo")]),
            [
                "✗ responses tool call — a function_call to a tool that was not offered: "
                'get_weather({"city":"Oslo"})',
                "  fix: make sure the server runs gpt-oss; upgrade vLLM (>= 0.21 is known to work)",
                "! chat tool call — tool_calls for a tool that was not offered: "
                'get_weather({"city": "Oslo"})',
                "  fix: make sure the server runs gpt-oss; upgrade vLLM (>= 0.21 is known to work) "
                "(needed only by backends with api: chat_completions)",
            ],
            id="another-tool",
        ),
        pytest.param(
            fault(status=404, message="Not Found"),
            [
                "✗ responses tool call — POST /v1/responses → 404: Not Found",
                "  fix: a router or proxy in front of vLLM may not pass this endpoint on "
                "(vllm#22403): point base_url at vLLM itself",
                "! chat tool call — POST /v1/chat/completions → 404: Not Found",
                "  fix: a router or proxy in front of vLLM may not pass this endpoint on "
                "(vllm#22403): point base_url at vLLM itself "
                "(needed only by backends with api: chat_completions)",
            ],
            id="no-such-endpoint",
        ),
        pytest.param(
            fault(status=400, message="bad field"),
            [
                "✗ responses tool call — POST /v1/responses → 400: bad field",
                "  fix: vLLM refused the request: upgrade vLLM (>= 0.21 is known to work)",
                "! chat tool call — POST /v1/chat/completions → 400: bad field",
                "  fix: vLLM refused the request: upgrade vLLM (>= 0.21 is known to work) "
                "(needed only by backends with api: chat_completions)",
            ],
            id="refused",
        ),
    ],
)
def test_round_trips_that_go_wrong(
    tmp_path: Path, mock_vllm_factory: Factory, reply: Reply, lines: list[str]
) -> None:
    mock = mock_vllm_factory(default=reply)
    result = doctor(write_config(tmp_path, mock.url))
    assert result.output.splitlines()[5:9] == lines
    assert result.exit_code == 1


def test_connection_lost_during_a_round_trip(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory([fault(drop_connection=True), GOOD])
    result = doctor(write_config(tmp_path, mock.url))
    line, fix = result.output.splitlines()[5:7]
    assert line.startswith("✗ responses tool call — POST /v1/responses: connection failed (")
    assert fix == "  fix: see the vLLM log: did the server stop?"
    assert result.exit_code == 1


def test_slow_model_times_out(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    slow = Reply(reasoning="Slow.", calls=[call("get_time")], fault=Fault(delay_s=30))
    mock = mock_vllm_factory([slow, GOOD])
    result = doctor(write_config(tmp_path, mock.url), "--timeout", "0.5")
    assert result.output.splitlines()[5:8] == [
        "✗ responses tool call — POST /v1/responses: no answer within 0.5 s",
        "  fix: the model may be loading or the GPUs busy: see the vLLM log, or allow more "
        "time with --timeout (each request) and --deadline (the whole command)",
        "✓ chat tool call — tool_calls get_time({})",
    ]
    assert result.output.splitlines()[-2:] == [
        "✓ reasoning — responses: no answer; chat: message.reasoning",
        "1 check failed.",
    ]
    assert result.exit_code == 1


def test_base_url_without_v1(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=GOOD)
    result = doctor(write_config(tmp_path, mock.root_url))
    assert result.output == (
        header(mock.root_url) + f"✓ reachable — connected to {mock.root_url}\n"
        "✓ health — GET /health → 200\n"
        "✓ version — vLLM 0.33.0\n"
        "✗ model — GET /models → 404\n"
        f"  fix: set `base_url:` of backend 'local' to {mock.url} (vLLM serves the API under /v1)\n"
        "- responses tool call — not run: GET /models failed\n"
        "- chat tool call — not run: GET /models failed\n"
        "- reasoning — not run: GET /models failed\n"
        "1 check failed, 3 not run.\n"
    )
    assert result.exit_code == 1


def test_server_without_health(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    # base_url one /v1 too deep: the root is then /v1, which has no /health.
    mock = mock_vllm_factory(default=GOOD)
    result = doctor(write_config(tmp_path, mock.url + "/v1"))
    assert result.output.splitlines()[1:7] == [
        f"✓ reachable — connected to {mock.url}",
        "✗ health — GET /v1/health → 404: this server has no /health; is it vLLM?",
        "  fix: point `base_url:` at vLLM's root URL plus /v1, e.g. http://localhost:8000/v1",
        "! version — GET /v1/version gives no vLLM version: is it vLLM?",
        "  fix: point `base_url:` at vLLM's root URL plus /v1, e.g. http://localhost:8000/v1",
        "✗ model — GET /v1/v1/models → 404",
    ]
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("api", "choice", "release", "why"),
    [
        pytest.param(
            "responses",
            "required",
            "0.27",
            "which vLLM's Responses API answers with 501 before 0.27",
            id="responses-required",
        ),
        pytest.param(
            "chat_completions",
            "get_time",
            "0.33",
            "which vLLM's Chat API enforces from 0.33 (0.22.1 ignores it)",
            id="chat-named",
        ),
    ],
)
def test_version_warns_when_agents_need_a_newer_vllm(
    tmp_path: Path,
    mock_vllm_factory: Factory,
    api: str,
    choice: str,
    release: str,
    why: str,
) -> None:
    settings = f"    model_settings:\n      tool_choice: {choice}\n    tools: [get_time]\n"
    module = f"clock_tools_{api}"  # a module is imported once per process
    (tmp_path / f"{module}.py").write_text("def get_time() -> str:\n    return 'noon'\n")
    tools = f"tools:\n  get_time:\n    function: {module}:get_time\n"
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", api=api)
    config.write_text(tools + config.read_text() + settings)
    old = mock_vllm_factory(default=GOOD, vllm_version="0.22")
    result = doctor(config, "--base-url", old.url)
    assert result.exit_code == 0, result.output
    assert (
        f"! version — vLLM 0.22.1: agent 'clock' sets tool_choice {choice!r}, {why}\n"
        f"  fix: upgrade vLLM to {release} or later (pip install -U vllm; 0.33.0 is the release "
        "checked)\n"
    ) in result.output
    assert result.output.endswith("Required checks passed; 1 warning.\n")
    new = mock_vllm_factory(default=GOOD)
    result = doctor(config, "--base-url", new.url)
    assert "✓ version — vLLM 0.33.0\n" in result.output
    assert result.output.endswith("All 7 checks passed.\n")


def test_version_warns_about_a_release_older_than_those_followed(
    tmp_path: Path, mock_vllm_factory: Factory
) -> None:
    mock = mock_vllm_factory(default=GOOD, profile=VLLM_0_33.but(version="0.19.1"))
    result = doctor(write_config(tmp_path, mock.url))
    assert result.exit_code == 0
    assert (
        "! version — vLLM 0.19.1: agent-runtime follows vLLM 0.22.1 and 0.33.0; older servers "
        "answer differently\n"
        "  fix: upgrade vLLM to 0.22 or later (pip install -U vllm; 0.33.0 is the release "
        "checked)\n"
    ) in result.output


# -- output and options ---------------------------------------------------------------------


def test_json(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=GOOD, profile=VLLM_0_33.but(chat_tool_parser=False))
    result = doctor(write_config(tmp_path, mock.url, api="chat_completions"), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "ok": False,
        "backends": [
            {
                "backend": "local",
                "api": "chat_completions",
                "base_url": mock.url,
                "model": MODEL,
                "ok": False,
                "checks": [
                    {
                        "name": "reachable",
                        "ok": True,
                        "required": True,
                        "detail": f"connected to {mock.root_url}",
                        "fix": None,
                    },
                    {
                        "name": "health",
                        "ok": True,
                        "required": True,
                        "detail": "GET /health → 200",
                        "fix": None,
                    },
                    {
                        "name": "version",
                        "ok": True,
                        "required": False,
                        "detail": "vLLM 0.33.0",
                        "fix": None,
                    },
                    {
                        "name": "model",
                        "ok": True,
                        "required": True,
                        "detail": f"{MODEL} is served (max_model_len 131072)",
                        "fix": None,
                    },
                    {
                        "name": "responses tool call",
                        "ok": True,
                        "required": False,
                        "detail": "function_call get_time({})",
                        "fix": None,
                    },
                    {
                        "name": "chat tool call",
                        "ok": False,
                        "required": True,
                        "detail": "no tool_calls (finish_reason 'stop', content null)",
                        "fix": PARSER_FIX,
                    },
                    {
                        "name": "reasoning",
                        "ok": True,
                        "required": True,
                        "detail": (
                            "responses: a reasoning item with reasoning_text; "
                            "chat: message.reasoning"
                        ),
                        "fix": None,
                    },
                ],
            }
        ],
    }


def test_json_of_an_unreachable_server(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = doctor(write_config(tmp_path, url), "--json")
    assert result.exit_code == 3
    report = json.loads(result.output)
    assert report["ok"] is False
    checks = report["backends"][0]["checks"]
    assert [(c["name"], c["ok"], c["required"]) for c in checks] == [
        ("reachable", False, True),
        ("health", None, True),
        ("version", None, False),
        ("model", None, True),
        ("responses tool call", None, True),
        ("chat tool call", None, False),
        ("reasoning", None, True),
    ]


def test_every_backend_in_turn_or_one(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory(default=GOOD)
    down = f"http://127.0.0.1:{free_port()}/v1"
    other = f"  remote:\n    base_url: {down}\n    model: {MODEL}\n    max_retries: 0\n"
    config = write_config(tmp_path, mock.url, backends=other)
    result = doctor(config)
    assert result.output.startswith(passing(mock) + "\n" + header(down, name="remote"))
    assert result.output.endswith("1 check failed, 6 not run.\n")
    assert result.exit_code == 3
    result = doctor(config, "--backend", "local")
    assert (result.exit_code, result.output) == (0, passing(mock))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("locl", "Error: unknown backend 'locl'. Did you mean 'local'?\n", id="close"),
        pytest.param("zzz", "Error: unknown backend 'zzz' (declared: 'local')\n", id="far"),
    ],
)
def test_unknown_backend(tmp_path: Path, name: str, message: str) -> None:
    result = doctor(write_config(tmp_path, "http://127.0.0.1:9/v1"), "--backend", name)
    assert (result.exit_code, result.output) == (2, message)


def test_missing_config(tmp_path: Path) -> None:
    result = doctor(tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: no agents.yaml at {tmp_path / 'nope.yaml'}.")


def test_help_documents_checks_and_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--help"])
    assert result.exit_code == 0
    assert "responses tool call  POST /v1/responses" in result.output
    assert "Exit codes: 0 every required check passed; 1 a check failed; 3 a server is" in (
        result.output
    )
    assert "--timeout SECONDS" in result.output


def test_in_process_backends_are_not_servers(tmp_path: Path, mock_vllm_factory: Factory) -> None:
    mock = mock_vllm_factory([GOOD, GOOD])
    gpu = "  gpu: {kind: vllm-embedded, model: openai/gpt-oss-20b}\n"
    config = write_config(tmp_path, mock.url, backends=gpu)
    result = doctor(config)
    assert (result.exit_code, result.stdout) == (0, passing(mock))
    assert result.stderr == "Backend 'gpu' runs vLLM in this process: not checked.\n"
    only = doctor(config, "--backend", "gpu")
    assert only.exit_code == 2
    assert only.stderr == (
        "Error: backend 'gpu' runs vLLM in this process (kind vllm-embedded), so there is no "
        "server to check; pass --base-url to check a server for it instead\n"
    )


# -- hostile servers: what comes back is data, and the command ends on time -----------------


Handler = Callable[[BaseHTTPRequestHandler, threading.Event], None]
MODELS = {"object": "list", "data": [{"id": MODEL, "object": "model", "max_model_len": 4096}]}


def answer(body: object, status: int = 200, content_type: str = "application/json") -> Handler:
    """Answer with `body` (JSON unless it is text already)."""
    data = (body if isinstance(body, str) else json.dumps(body)).encode()

    def handle(request: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    return handle


def trickle(request: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A 200 whose body comes one byte every 0.1 s: each read succeeds, the answer never ends
    (not before 1,000 s)."""
    request.send_response(200)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", "10000")
    request.end_headers()
    for _ in range(10_000):
        if stop.wait(0.1):
            return
        request.wfile.write(b" ")
        request.wfile.flush()


@contextlib.contextmanager
def raw_server(routes: dict[str, Handler]) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 that answers each path as `routes` says (vLLM's
    /health, /version and /v1/models by default); yields its base_url (…/v1)."""
    stop = threading.Event()
    known = {
        "/health": answer("", content_type="text/plain"),
        "/version": answer({"version": "0.33.0"}),
        "/v1/models": answer(MODELS),
        **routes,
    }

    class Request(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            known.get(self.path, answer({"detail": "Not Found"}, 404))(self, stop)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Request)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def doctor_process(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """doctor in a process of its own, bounded: a hang fails the test instead of hanging it."""
    return subprocess.run(
        [sys.executable, "-m", "agent_runtime", "doctor", "-c", str(config), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=60,
        check=False,
    )


HOSTILE_TEXT = "\x1b]0;pwned\x07 [/y] \x1b[2J"
NOT_VLLM = (
    "is base_url a vLLM server? A proxy or web server in front of it may answer instead: point "
    "base_url at vLLM itself, and see the vLLM log"
)


@pytest.mark.parametrize(
    ("body", "detail", "fix"),
    [
        pytest.param(
            answer(f"<html><title>{HOSTILE_TEXT}</title></html>", content_type="text/html"),
            "→ 200 with content type 'text/html', not JSON: "
            "'<html><title>\\x1b]0;pwned\\x07 [/y] \\x1b[2J</title></html>'",
            NOT_VLLM,
            id="html",
        ),
        pytest.param(
            answer('{"output": [', content_type="application/json"),
            "→ 200 with invalid JSON (Expecting value at line 1 column 13): '{\"output\": ['",
            "see the vLLM log",
            id="invalid-json",
        ),
        pytest.param(
            answer({"error": {"message": f"overloaded {HOSTILE_TEXT}", "code": 500}}),
            "→ 200 with an error: overloaded ␛]0;pwned␇ [/y] ␛[2J",
            "see the vLLM log",
            id="200-with-an-error-body",
        ),
        pytest.param(
            answer({"output": [], "choices": []}, content_type="text/plain"),
            "→ 200 with content type 'text/plain', not JSON: '{\"output\": [], \"choices\": []}'",
            NOT_VLLM,
            id="wrong-content-type",
        ),
        pytest.param(
            answer([1, 2]),
            "→ 200 with a list, not a JSON object",
            NOT_VLLM,
            id="json-list",
        ),
        pytest.param(
            answer({"output": "nope", "choices": {"a": 1}}),
            '→ 200 without a list of `{items}`: \'{{"output": "nope", "choices": {{"a": 1}}}}\'',
            NOT_VLLM,
            id="wrong-shape",
        ),
    ],
)
def test_answers_that_are_not_vllm_fail_their_check(
    tmp_path: Path, body: Handler, detail: str, fix: str
) -> None:
    routes = {"/v1/responses": body, "/v1/chat/completions": body}
    with raw_server(routes) as url:
        result = doctor(write_config(tmp_path, url))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    responses = detail.replace("{items}", "output").replace("{{", "{").replace("}}", "}")
    chat = detail.replace("{items}", "choices").replace("{{", "{").replace("}}", "}")
    assert lines[5:10] == [
        f"✗ responses tool call — POST /v1/responses {responses}",
        f"  fix: {fix}",
        f"! chat tool call — POST /v1/chat/completions {chat}",
        f"  fix: {fix} (needed only by backends with api: chat_completions)",
        "- reasoning — not run: no answer to look at",
    ]
    assert "\x1b" not in result.output
    assert result.exit_code == 1


def test_answers_of_the_wrong_shape_inside(tmp_path: Path) -> None:
    odd = {
        "output": [1, "x", {"type": "function_call"}, {"type": "message", "content": "hi"}],
        "choices": [{"message": "x", "finish_reason": 3}],
    }
    with raw_server({"/v1/responses": answer(odd), "/v1/chat/completions": answer(odd)}) as url:
        result = doctor(write_config(tmp_path, url))
    assert result.output.splitlines()[5:9] == [
        "✗ responses tool call — a function_call to a tool that was not offered: None(None)",
        "  fix: make sure the server runs gpt-oss; upgrade vLLM (>= 0.21 is known to work)",
        "! chat tool call — no tool_calls (finish_reason None)",
        "  fix: the model stopped before calling the tool: see the vLLM log "
        "(needed only by backends with api: chat_completions)",
    ]
    assert result.exit_code == 1


def test_a_model_list_that_is_a_web_page(tmp_path: Path) -> None:
    page = answer("<html>Welcome</html>", content_type="text/html; charset=utf-8")
    with raw_server({"/v1/models": page, "/version": page}) as url:
        result = doctor(write_config(tmp_path, url))
    assert result.output.splitlines()[5:7] == [
        "✗ model — GET /v1/models → 200, but not a list of models: '<html>Welcome</html>' "
        "(text/html; charset=utf-8)",
        "  fix: point `base_url:` at vLLM's root URL plus /v1, e.g. http://localhost:8000/v1",
    ]
    assert result.exit_code == 1


def test_a_trickling_server_is_cut_off_by_the_request_timeout(tmp_path: Path) -> None:
    with raw_server({"/health": trickle}) as url:
        process = doctor_process(write_config(tmp_path, url), "--timeout", "1")
    root = url.removesuffix("/v1")
    assert process.stdout.splitlines()[1:3] == [
        f"✗ reachable — GET /health at {root}: no answer within 1 s",
        "  fix: see the server's log; a slow or overloaded server may need more time: "
        "--timeout SECONDS (each request), --deadline SECONDS (the whole command)",
    ]
    assert process.returncode == 3


def test_the_deadline_bounds_the_whole_command(tmp_path: Path) -> None:
    # Each request may take 30 s, but the command only 10 s: the model's answer trickles in.
    with raw_server({"/v1/responses": trickle}) as url:
        process = doctor_process(write_config(tmp_path, url), "--timeout", "30", "--deadline", "10")
    lines = process.stdout.splitlines()
    assert lines[-3:] == [
        "- reasoning — not run: doctor's deadline passed",
        "1 check failed, 2 not run.",
        "Stopped: doctor's deadline of 10 s (--deadline) passed.",
    ]
    assert (
        "✗ responses tool call — POST /v1/responses: no answer before doctor's deadline "
        "(10 s, --deadline)" in lines
    )
    assert process.returncode == 1


def test_doctor_lines_never_show_secrets(tmp_path: Path) -> None:
    key = "sk-doctor-secret-4242"
    echo = answer({"error": {"message": f"bad key: Bearer {key} for {key}"}}, status=401)
    with raw_server({"/v1/responses": echo, "/v1/chat/completions": echo}) as url:
        secret_url = url.replace("http://", "http://ada:pass-w0rd-77@")
        config = write_config(tmp_path, secret_url, extra=f"    api_key: {key}\n")
        result = doctor(config)
        as_json = doctor(config, "--json")
    for output in (result.output, as_json.output):
        assert key not in output and "pass-w0rd-77" not in output
    assert result.output.splitlines()[0] == (
        f"Backend 'local' (api: responses, model: {MODEL}) at "
        f"{url.replace('http://', 'http://***@')}"
    )
    assert "✗ responses tool call — POST /v1/responses → 401: bad key: Bearer *** for ***" in (
        result.output.splitlines()
    )
    assert json.loads(as_json.output)["backends"][0]["base_url"] == url.replace(
        "http://", "http://***@"
    )
