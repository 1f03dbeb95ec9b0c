"""`agent-runtime logs`: the list of runs, one run's timeline, JSON, cassettes, pruning; and
`run --continue`, which goes on with the conversation of the last `run`."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agent_runtime.cli import cli
from agent_runtime.cli.logs import duration_text, short_id, timeline
from agent_runtime.results import Retrying, ToolCall
from agent_runtime.runlog import RunLog
from agent_runtime.testing import MockVLLM, Reply, call, fault, load_script

WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HINT = "(not recorded: set tracing.include_sensitive_data: true)"


@pytest.fixture
def mock() -> Iterator[MockVLLM]:
    with MockVLLM() as server:
        yield server


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return json.dumps({"city": city, "condition": "sunny", "temperature_c": 21})


def write_config(tmp_path: Path, *, sensitive: bool = True, extra: str = "") -> Path:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends: {mock: {base_url: '${MOCK_URL:-http://127.0.0.1:9/v1}', "
        "model: openai/gpt-oss-20b, max_retries: 0}}\n"
        "tools: {get_weather: {function: 'tests.cli.test_logs:get_weather'}}\n"
        "agents:\n"
        "  triage: {handoffs: [weather-haiku]}\n"
        "  weather-haiku: {tools: [get_weather]}\n"
        "  poet: {instructions: Write haikus.}\n"
        f"tracing: {{include_sensitive_data: {str(sensitive).lower()}}}\n" + extra
    )
    return config


def invoke(config: Path, *args: str, mock: MockVLLM | None = None) -> Result:
    env = {"MOCK_URL": mock.url} if mock is not None else {}
    return CliRunner().invoke(cli, [*args[:1], "-c", str(config), *args[1:]], env=env)


def when(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def runs(config: Path) -> list[dict[str, Any]]:
    result = invoke(config, "logs", "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def haiku_run(mock: MockVLLM, config: Path, prompt: str = "Weather in Tokyo?") -> None:
    mock.add(
        Reply(reasoning="Hand over.", calls=[call("transfer_to_weather_haiku")]),
        Reply(reasoning="Call get_weather.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Sunny. Write it.", final="Sun over Tokyo."),
    )
    result = invoke(config, "run", "triage", prompt, mock=mock)
    assert result.exit_code == 0, result.output


def test_logs_lists_recent_runs_newest_first(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    haiku_run(mock, config)
    mock.add(Reply(final="Old pond."))
    assert invoke(config, "run", "poet", "A haiku\nabout a very long pond, please", mock=mock)
    second, first = runs(config)
    result = invoke(config, "logs")
    assert (result.exit_code, result.stderr) == (0, "")

    def row(run: dict[str, Any], agent: str, turns: int, text: str) -> str:
        tokens = str(run["input_tokens"] + run["output_tokens"])
        return (
            f"{when(run['started_at'])}  {short_id(run['trace_id'])}  {agent}  completed  "
            f"{str(turns).rjust(5)}  {tokens.rjust(6)}  "
            f"{duration_text(run['duration_ms']).rjust(8)}  {text}\n"
        )

    assert result.stdout == (
        "TIME                 RUN       AGENT   OUTCOME    TURNS  TOKENS  DURATION  INPUT\n"
        + row(second, "poet  ", 1, "A haiku about a very long pond, please")
        + row(first, "triage", 3, "Weather in Tokyo?")
    )
    assert first["final_agent"] == "weather-haiku"
    assert first["output"] == "Sun over Tokyo."


def test_logs_filters_by_agent_session_and_text(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    haiku_run(mock, config)
    mock.add(Reply(final="Old pond."), Reply(final="Frog jumps."))
    invoke(config, "run", "poet", "Haiku one", mock=mock)
    invoke(config, "run", "poet", "Haiku two", "--session", "mine", mock=mock)
    [only] = json.loads(invoke(config, "logs", "--json", "--agent", "triage").stdout)
    assert only["input"] == "Weather in Tokyo?"
    [only] = json.loads(invoke(config, "logs", "--json", "--session", "mine").stdout)
    assert only["output"] == "Frog jumps."
    found = json.loads(invoke(config, "logs", "--json", "--search", "HAIKU").stdout)
    assert [run["output"] for run in found] == ["Frog jumps.", "Old pond."]
    assert len(json.loads(invoke(config, "logs", "--json", "-n", "1").stdout)) == 1
    result = invoke(config, "logs", "--search", "nothing like this")
    assert (result.exit_code, result.stdout) == (0, "No runs match.\n")


def test_one_runs_timeline(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    haiku_run(mock, config)
    (run,) = runs(config)
    records = json.loads(invoke(config, "logs", run["trace_id"], "--json").stdout)["records"]
    model_calls = [r for r in records if r["type"] == "model_call"]
    tool_call = next(r for r in records if r["type"] == "tool_call")

    def model_line(record: dict[str, Any]) -> str:
        usage = record["usage"]
        return (
            f"· model call of {record['agent']}: {duration_text(record['duration_ms'])}, "
            f"{usage['input_tokens']} in, {usage['output_tokens']} out tokens"
        )

    result = invoke(config, "logs", short_id(run["trace_id"]))
    assert (result.exit_code, result.stderr) == (0, "")
    tokens = run["input_tokens"] + run["output_tokens"]
    assert result.stdout == (
        f"Run {run['trace_id']} of agent triage (session {run['session']})\n"
        f"Started {when(run['started_at'])}, completed after {duration_text(run['duration_ms'])}, "
        f"3 turns, {tokens} tokens ({run['input_tokens']} in, {run['output_tokens']} out)\n"
        "Input: Weather in Tokyo?\n"
        f"{model_line(model_calls[0])}\n"
        "[reasoning] Hand over.\n"
        "[handoff] triage -> weather-haiku\n"
        f"{model_line(model_calls[1])}\n"
        "[reasoning] Call get_weather.\n"
        '[tool] get_weather {"city":"Tokyo"}\n'
        f"[result] get_weather {WEATHER}\n"
        f"  get_weather ran {duration_text(tool_call['duration_ms'])}\n"
        f"{model_line(model_calls[2])}\n"
        "[reasoning] Sunny. Write it.\n"
        "[answer] Sun over Tokyo.\n"
    )


def test_without_sensitive_data_logs_says_how_to_record_it(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, sensitive=False)
    haiku_run(mock, config)
    listing = invoke(config, "logs").stdout.splitlines()
    assert listing[1].endswith("  (not recorded)")
    assert listing[-1] == f"Input {HINT}"
    (run,) = runs(config)
    lines = invoke(config, "logs", run["trace_id"]).stdout.splitlines()
    assert lines[2] == f"Input: {HINT}"
    assert lines[4] == f"  output {HINT}"
    assert f"[tool] get_weather {HINT}" in lines
    assert f"[result] get_weather {HINT}" in lines
    assert "Tokyo" not in "\n".join(lines)


def test_a_failed_run_shows_its_error(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    mock.add(fault(status=503, message="engine restarting"))
    failed = invoke(config, "run", "poet", "A haiku", mock=mock)
    assert failed.exit_code == 3
    (run,) = runs(config)
    assert run["outcome"] == "failed"
    lines = invoke(config, "logs", run["trace_id"][:10]).stdout.splitlines()
    assert lines[1].startswith(f"Started {when(run['started_at'])}, failed after ")
    assert lines[-1] == f"Error: {run['error']}"
    assert run["error"].startswith("BackendError: the model server of backend `mock`")


def test_a_run_written_as_a_cassette_replays(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    haiku_run(mock, config)
    (run,) = runs(config)
    cassette = tmp_path / "run.yaml"
    result = invoke(config, "logs", run["trace_id"], "--cassette", str(cassette))
    assert (result.exit_code, result.stdout) == (
        0,
        f"Wrote 3 model calls of run {run['trace_id']} to {cassette}.\n",
    )
    with MockVLLM(script=load_script(cassette)) as replay:
        again = invoke(config, "run", "triage", "Weather in Tokyo?", "--json", mock=replay)
    assert json.loads(again.stdout)["final_output"] == "Sun over Tokyo."


def test_a_cassette_needs_the_runs_texts(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, sensitive=False)
    haiku_run(mock, config)
    (run,) = runs(config)
    result = invoke(config, "logs", run["trace_id"], "--cassette", str(tmp_path / "c.yaml"))
    assert result.exit_code == 2
    assert "Set `tracing: {include_sensitive_data: true}` in agents.yaml" in result.stderr
    assert not (tmp_path / "c.yaml").exists()


def test_prune_removes_old_runs_and_says_what(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="sessions: {keep_days: 10}\n")
    haiku_run(mock, config)
    mock.add(Reply(final="Old pond."))
    invoke(config, "run", "poet", "A haiku", "--session", "kept", mock=mock)
    result = invoke(config, "logs", "--prune")
    log_path = tmp_path / ".agent-runtime" / "runs.sqlite3"
    sessions = tmp_path / ".agent-runtime" / "sessions.sqlite3"
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Removed 0 runs (0 records) started before ")
    assert lines[0].endswith(f" from {log_path}.")
    assert lines[1] == f"Removed 0 sessions not used for 10 days from {sessions}."
    # Runs that started before the cut go, with their records.
    log = RunLog(log_path)
    newest, _ = log.runs()
    log.close()
    result = invoke(config, "logs", "--prune", "--keep-days", "0.0000001")
    assert result.stdout.splitlines()[0].startswith("Removed 2 runs (")
    assert runs(config) == []
    assert invoke(config, "logs", newest.trace_id).exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--keep-days", "3"],
            "--keep-days goes with --prune: agent-runtime logs --prune --keep-days N",
            id="keep-days-alone",
        ),
        pytest.param(
            ["abc", "--prune"],
            "--prune removes old runs, not one run: leave out RUN_ID.",
            id="prune-one",
        ),
        pytest.param(
            ["--cassette", "x.yaml"],
            "--cassette writes one run: give its RUN_ID (see `agent-runtime logs`).",
            id="cassette-without-run",
        ),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(write_config(tmp_path), "logs", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")


def test_logs_before_any_run(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = tmp_path / ".agent-runtime" / "runs.sqlite3"
    assert invoke(config, "logs").stdout == f"No runs logged yet in {path}.\n"
    assert invoke(config, "logs", "--json").stdout == "[]\n"
    result = invoke(config, "logs", "abc")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: there is no run log at {path} yet: runs are logged there once an agent has "
        "run with `tracing.path` pointing to it.\n",
    )
    assert not path.parent.exists()


def test_logs_of_a_json_lines_trace_says_what_to_change(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="")
    config.write_text(config.read_text().replace("tracing: {", "tracing: {path: t.jsonl, "))
    result = invoke(config, "logs")
    assert (result.exit_code, result.stderr) == (
        2,
        f"Error: `tracing.path` in {config} is 't.jsonl', a JSON-lines file, which `logs` "
        "does not read: set it to a run log (a name ending in .sqlite3, .sqlite, .db; the "
        "default is .agent-runtime/runs.sqlite3).\n",
    )


def test_an_ambiguous_run_id(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    mock.add(Reply(final="a"), Reply(final="b"))
    invoke(config, "run", "poet", "one", mock=mock)
    invoke(config, "run", "poet", "two", mock=mock)
    result = invoke(config, "logs", "trace_")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: 'trace_' is the start of several runs' ids (")


# -- run --continue --------------------------------------------------------------------------------


def test_run_continue_goes_on_with_the_last_run(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    mock.add(Reply(final="Hello Ada."), Reply(final="Other."), Reply(final="You are Ada."))
    assert invoke(config, "run", "poet", "I am Ada.", mock=mock).stdout == "Hello Ada.\n"
    # A chat's session is not a run's: --continue goes on with the last run.
    invoke(config, "run", "poet", "Something else", "--session", "chat-x", mock=mock)
    result = invoke(config, "run", "poet", "Who am I?", "--continue", mock=mock)
    assert (result.exit_code, result.stdout) == (0, "You are Ada.\n")
    assert mock.model_requests[2].user_texts == ["I am Ada.", "Who am I?"]
    newest, _, first = runs(config)
    assert newest["session"] == first["session"]
    assert newest["session"].startswith("run-")


def test_run_continue_with_nothing_to_continue(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = invoke(config, "run", "poet", "Who am I?", "--continue")
    sessions = tmp_path / ".agent-runtime" / "sessions.sqlite3"
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"Error: there is no earlier run to continue in {sessions}: start one without "
        "--continue (or pick a conversation with --session ID).\n",
    )


def test_run_continue_and_session_together(tmp_path: Path) -> None:
    result = invoke(write_config(tmp_path), "run", "poet", "hi", "--continue", "--session", "s")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: --continue and --session both choose the conversation: give one.\n",
    )


def chat(config: Path, mock: MockVLLM | None, lines: str, *args: str) -> Any:
    env = {**os.environ, "MOCK_URL": mock.url if mock else "http://127.0.0.1:9/v1"}
    return subprocess.run(
        [sys.executable, "-m", "agent_runtime", "chat", "-c", str(config), *args],
        input=lines,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_chat_continue_resumes_the_last_chat(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    mock.add(Reply(final="Hello Ada."), Reply(final="A run."), Reply(final="You are Ada."))
    first = chat(config, mock, "I am Ada.\n", "poet")
    assert (first.returncode, first.stdout) == (0, "Hello Ada.\n"), first.stderr
    invoke(config, "run", "poet", "Not a chat", mock=mock)
    again = chat(config, mock, "Who am I?\n", "poet", "--continue")
    assert (again.returncode, again.stdout) == (0, "You are Ada.\n"), again.stderr
    assert mock.model_requests[2].user_texts == ["I am Ada.", "Who am I?"]


def test_chat_continue_with_nothing_to_continue(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = chat(config, None, "hi\n", "poet", "--continue")
    sessions = tmp_path / ".agent-runtime" / "sessions.sqlite3"
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"Error: there is no earlier chat to continue in {sessions}: start one without "
        "--continue (or pick a conversation with --session ID).\n",
    )


def test_in_a_terminal_the_timeline_looks_like_a_live_run(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    haiku_run(mock, config)
    (run,) = runs(config)
    result = CliRunner().invoke(
        cli,
        ["logs", "-c", str(config), run["trace_id"]],
        env={"FORCE_COLOR": "1", "COLUMNS": "200", "TERM": "xterm"},
    )
    assert result.exit_code == 0, result.output
    text = ANSI.sub("", result.stdout)
    assert "Thinking" not in text  # no spinner: nothing is awaited
    lines = text.splitlines()
    assert lines[2:] == [
        "Input: Weather in Tokyo?",
        lines[3],
        "Hand over.",
        "⇢ handed to weather-haiku",
        lines[6],
        "Call get_weather.",
        '→ get_weather {"city":"Tokyo"}',
        f"← get_weather {WEATHER}",
        lines[10],
        lines[11],
        "Sunny. Write it.",
        "Sun over Tokyo.",
    ]
    assert [lines[i].startswith("· model call of ") for i in (3, 6, 11)] == [True] * 3
    assert lines[10].startswith("  get_weather ran ")


def test_retries_and_tool_errors_are_in_the_timeline(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("max_retries: 0", "max_retries: 1"))
    mock.add(
        fault(status=503, message="engine restarting"),
        Reply(calls=[call("get_weather", town="Tokyo")]),
        Reply(final="Sorry."),
    )
    assert invoke(config, "run", "weather-haiku", "Weather?", mock=mock).exit_code == 0
    (run,) = runs(config)
    lines = invoke(config, "logs", run["trace_id"]).stdout.splitlines()
    retries = [line for line in lines if line.startswith("[retry] ")]
    assert len(retries) == 1
    assert "503" in retries[0]
    assert any(line.startswith("[result] get_weather Error:") for line in lines)


def test_other_records_and_calls_that_did_not_run_are_shown() -> None:
    records = [
        {"type": "run_start", "agent": "a"},
        {
            "type": "model_call",
            "agent": "a",
            "duration_ms": 1500.0,
            "usage": {"input_tokens": 5, "output_tokens": 2},
            "output": [
                {"type": "function_call", "name": "approve_me", "arguments": "{}", "call_id": "c1"}
            ],
        },
        {"type": "replica_down", "agent": "a", "backend": "local", "url": "http://gpu-2/v1"},
        {"type": "output_retry", "agent": "a", "attempt": 1, "problems": "`city` is missing"},
    ]
    assert [
        event.text if hasattr(event, "text") and not hasattr(event, "name") else event
        for event in timeline(records)
    ] == [
        "· model call of a: 1.5 s, 5 in, 2 out tokens",
        ToolCall(agent="a", name="approve_me", arguments="{}", call_id="c1"),
        "· replica_down: backend=local, url=http://gpu-2/v1",
        Retrying(
            agent="a",
            attempt=1,
            cause="the answer does not match the output_schema: `city` is missing",
        ),
    ]
