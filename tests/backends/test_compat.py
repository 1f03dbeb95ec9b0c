"""The private parts of `openai` and the Agents SDK the runtime relies on, pinned.

Each test fails when an upgrade moves or changes one of them (`agent_runtime.backends._compat`
is the only module that uses them); then adapt `_compat`, check the fast request path and the
bodies on the wire (tests/backends/test_client.py, test_wire.py), and move the version ranges.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import tomllib
from typing import Any

import pytest
from packaging.requirements import Requirement

from agent_runtime.backends import _compat
from tests import helpers


def signature(function: Any) -> str:
    return str(inspect.signature(function))


def test_openapi_dumps() -> None:
    from openai._utils._json import openapi_dumps

    assert signature(openapi_dumps) == "(obj: Any) -> bytes"
    body = {"text": "é 東京 \u2028 ✓", "n": 10**20, "x": 0.5, "none": None}
    assert openapi_dumps(body) == (
        '{"text":"é 東京 \u2028 ✓","n":100000000000000000000,"x":0.5,"none":null}'.encode()
    )
    with pytest.raises(ValueError, match="Out of range float"):
        openapi_dumps({"x": float("nan")})


def test_make_request_options() -> None:
    from openai import not_given
    from openai._base_client import make_request_options

    assert list(inspect.signature(make_request_options).parameters)[:8] == [
        "query",
        "extra_headers",
        "extra_query",
        "extra_body",
        "idempotency_key",
        "timeout",
        "post_parser",
        "security",
    ]
    options = make_request_options(
        extra_headers={"X-A": "1"},
        extra_query={"q": "1"},
        timeout=not_given,
        security={"bearer_auth": True},
    )
    assert options == {
        "headers": {"X-A": "1"},
        "params": {"q": "1"},
        "security": {"bearer_auth": True},
    }
    assert _compat.request_options({"extra_headers": {"X-A": "1"}, "timeout": None}) == {
        "headers": {"X-A": "1"},
        "timeout": None,
        "security": {"bearer_auth": True},
    }


def test_client_post_takes_raw_content() -> None:
    from openai import AsyncOpenAI

    assert signature(AsyncOpenAI.post) == (
        "(self, path: 'str', *, cast_to: 'Type[ResponseT]', body: 'Body | None' = None, "
        "content: 'AsyncBinaryTypes | None' = None, files: 'RequestFiles | None' = None, "
        "options: 'RequestOptions' = {}, stream: 'bool' = False, "
        "stream_cls: 'type[_AsyncStreamT] | None' = None) -> 'ResponseT | _AsyncStreamT'"
    )


def test_to_dump_compatible() -> None:
    from types import MappingProxyType

    from agents.util._json import _to_dump_compatible

    assert signature(_to_dump_compatible) == "(obj: 'Any') -> 'Any'"
    items = [{"a": (1, {"b": MappingProxyType({"c": (2,)})})}]
    assert _compat.to_plain_json(items) == [{"a": [1, {"b": {"c": [2]}}]}]
    assert type(_compat.to_plain_json(items)[0]["a"][1]["b"]) is dict


def test_sdk_constants() -> None:
    from agents import _debug

    assert _compat.fake_id() == "__fake_id__"
    assert isinstance(_debug.DONT_LOG_MODEL_DATA, bool)
    assert _compat.sdk_logs_model_data() is not _debug.DONT_LOG_MODEL_DATA


def test_model_seams() -> None:
    from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel

    assert signature(OpenAIResponsesModel._get_client) == "(self) -> 'AsyncOpenAI'"
    assert signature(OpenAIChatCompletionsModel._get_client) == "(self) -> 'AsyncOpenAI'"
    assert signature(OpenAIResponsesModel._build_response_create_kwargs) == (
        "(self, system_instructions: 'str | None', "
        "input: 'str | list[TResponseInputItem]', model_settings: 'ModelSettings', "
        "tools: 'list[Tool]', output_schema: 'AgentOutputSchemaBase | None', "
        "handoffs: 'list[Handoff]', previous_response_id: 'str | None' = None, "
        "conversation_id: 'str | None' = None, stream: 'bool' = False, "
        "prompt: 'ResponsePromptParam | None' = None) -> 'dict[str, Any]'"
    )
    # The runtime's hook reads `input` from the keyword arguments: the SDK passes them so.
    source = inspect.getsource(OpenAIResponsesModel)
    assert source.count("self._build_response_create_kwargs(\n") >= 1
    assert "            input=input,\n" in source


def test_what_the_sdk_reads_from_the_client() -> None:
    """The SDK's models use `base_url` (to tell OpenAI's API from others), `responses.create`,
    `responses.with_streaming_response` (optional) and `chat.completions.create`."""
    from agents.models import openai_chatcompletions, openai_client_utils, openai_responses

    assert 'getattr(client, "base_url", None)' in inspect.getsource(openai_client_utils)
    responses = inspect.getsource(openai_responses.OpenAIResponsesModel._fetch_response)
    assert 'getattr(client.responses, "with_streaming_response", None)' in responses
    assert "await client.responses.create(**create_kwargs)" in responses
    chat = inspect.getsource(openai_chatcompletions.OpenAIChatCompletionsModel)
    assert "self._get_client().chat.completions.create(**create_kwargs)" in chat


# -- versions ---------------------------------------------------------------------------------


def test_installed_versions_are_supported() -> None:
    _compat.check_versions()  # raises otherwise


def test_pyproject_pins_the_supported_ranges() -> None:
    project = tomllib.loads((helpers.ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        (requirement := Requirement(line)).name: str(requirement.specifier)
        for line in project["dependencies"]
    }
    for name, wanted in _compat.SUPPORTED.items():
        assert sorted(pins[name].split(",")) == sorted(wanted.split(",")), name


@pytest.mark.parametrize(
    ("installed", "message"),
    [
        pytest.param(
            {"openai": "3.58.0", "openai-agents": "0.24.0"},
            "openai 3.58.0 is installed, but agent-runtime needs openai>=3.52,<3.58. "
            "agent-runtime relies on internals of these packages that other versions may have "
            "changed; install supported versions: pip install 'openai>=3.52,<3.58' "
            "'openai-agents>=0.24,<0.25'",
            id="openai-too-new",
        ),
        pytest.param(
            {"openai": "3.54.0", "openai-agents": "0.25.0rc1"},
            "openai-agents 0.25.0rc1 is installed, but agent-runtime needs "
            "openai-agents>=0.24,<0.25. agent-runtime relies on internals of these packages "
            "that other versions may have changed; install supported versions: pip install "
            "'openai>=3.52,<3.58' 'openai-agents>=0.24,<0.25'",
            id="agents-prerelease",
        ),
        pytest.param(
            {"openai": "2.9.0", "openai-agents": None},
            "openai 2.9.0 is installed, but agent-runtime needs openai>=3.52,<3.58; "
            "openai-agents is not installed (agent-runtime needs openai-agents>=0.24,<0.25). "
            "agent-runtime relies on internals of these packages that other versions may have "
            "changed; install supported versions: pip install 'openai>=3.52,<3.58' "
            "'openai-agents>=0.24,<0.25'",
            id="both",
        ),
        pytest.param(
            {"openai": "not-a-version", "openai-agents": "0.24.0"},
            "openai not-a-version is installed, but agent-runtime needs openai>=3.52,<3.58. "
            "agent-runtime relies on internals of these packages that other versions may have "
            "changed; install supported versions: pip install 'openai>=3.52,<3.58' "
            "'openai-agents>=0.24,<0.25'",
            id="unparsable",
        ),
    ],
)
def test_unsupported_versions_fail_loudly(installed: dict[str, str | None], message: str) -> None:
    with pytest.raises(_compat.UnsupportedVersionError) as caught:
        _compat.check_versions(installed)
    assert str(caught.value) == message


@pytest.mark.parametrize("versions", [("3.52.0", "0.24.0"), ("3.57.9", "0.24.3")])
def test_versions_within_the_ranges_pass(versions: tuple[str, str]) -> None:
    _compat.check_versions(dict(zip(("openai", "openai-agents"), versions, strict=True)))


def test_the_check_runs_when_the_backends_are_imported() -> None:
    code = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '3.99.0' if name == 'openai' else real(name)\n"
        "import agent_runtime.backends\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "agent_runtime.backends._compat.UnsupportedVersionError: openai 3.99.0 is installed, "
        "but agent-runtime needs openai>=3.52,<3.58. agent-runtime relies on internals of these "
        "packages that other versions may have changed; install supported versions: pip install "
        "'openai>=3.52,<3.58' 'openai-agents>=0.24,<0.25'"
    )


def test_cli_reports_an_unsupported_version_without_a_traceback(tmp_path: Any) -> None:
    code = (
        "import importlib.metadata as m, sys\n"
        "real = m.version\n"
        "m.version = lambda name: '0.30.0' if name == 'openai-agents' else real(name)\n"
        "from agent_runtime.cli import main\n"
        "sys.argv = ['agent-runtime', 'run', '-c', sys.argv[1], 'weather-haiku', 'hi']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(helpers.PROJECT / "agents.yaml")],
        capture_output=True,
        text=True,
        env={"STATE_DIR": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: openai-agents 0.30.0 is installed, but agent-runtime needs "
        "openai-agents>=0.24,<0.25. agent-runtime relies on internals of these packages that "
        "other versions may have changed; install supported versions: pip install "
        "'openai>=3.52,<3.58' 'openai-agents>=0.24,<0.25'\n"
    )
