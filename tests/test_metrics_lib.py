"""`agent_runtime.metrics`: Prometheus metrics of a runtime's runs, read back with the official
parser of the text format, and served on a port of their own."""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agent_runtime import AgentRuntimeError, BackendUnavailableError, Runtime
from agent_runtime.metrics import Metrics, retry_cause_label
from agent_runtime.testing import MockVLLM, Reply, call, fault


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return json.dumps({"city": city, "condition": "sunny"})


def fail(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why.
    """
    raise ValueError(reason)


def project(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        f"sessions: {{path: {tmp_path / 'sessions.sqlite3'}}}\n"
        "tracing: {enabled: false}\n"
        "backends:\n"
        "  mock: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 2,\n"
        "         retry_delay_s: 0.01, retry_max_delay_s: 0.01}\n"
        "tools:\n"
        "  get_weather: {function: 'tests.test_metrics_lib:get_weather'}\n"
        "  fail: {function: 'tests.test_metrics_lib:fail'}\n"
        "agents:\n"
        "  weather: {instructions: Weather., tools: [get_weather, fail]}\n"
        "  triage: {instructions: Hand over., handoffs: [weather]}\n",
        encoding="utf-8",
    )
    return path


def samples(metrics: Metrics) -> dict[str, float]:
    """Every sample of the text format as `name{label="value",...}` → value, labels sorted."""
    body, _ = metrics.render()
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


async def run_with_metrics(tmp_path: Path, url: str, *runs: tuple[str, str]) -> Metrics:
    metrics = Metrics()
    async with Runtime.from_yaml(project(tmp_path), environ={"MOCK_URL": url}) as runtime:
        stop = metrics.attach(runtime)
        for agent, text in runs:
            with contextlib.suppress(AgentRuntimeError):
                await runtime.run(agent, text)
        stop()
    return metrics


async def test_a_run_counts_its_run_model_calls_tool_calls_and_tokens(tmp_path: Path) -> None:
    script = [Reply(calls=[call("get_weather", city="Tokyo")]), Reply(final="Sun.")]
    with MockVLLM(script) as mock:
        metrics = await run_with_metrics(tmp_path, mock.url, ("weather", "Tokyo?"))
    found = samples(metrics)
    assert found['agent_runtime_runs_total{agent="weather",outcome="completed"}'] == 1
    assert (
        found['agent_runtime_run_duration_seconds_count{agent="weather",outcome="completed"}'] == 1
    )
    assert found['agent_runtime_run_duration_seconds_sum{agent="weather",outcome="completed"}'] > 0
    assert found['agent_runtime_runs_in_flight{agent="weather"}'] == 0
    assert found['agent_runtime_model_calls_total{agent="weather"}'] == 2
    assert found['agent_runtime_model_call_duration_seconds_count{agent="weather"}'] == 2
    assert found['agent_runtime_tool_calls_total{agent="weather",tool="get_weather"}'] == 1
    assert (
        found['agent_runtime_tool_call_duration_seconds_count{agent="weather",tool="get_weather"}']
        == 1
    )
    assert found['agent_runtime_tokens_total{agent="weather",kind="input"}'] > 0
    assert found['agent_runtime_tokens_total{agent="weather",kind="output"}'] > 0
    assert not any("failures_total" in name or "retries_total" in name for name in found)


async def test_failures_and_retries_are_counted(tmp_path: Path) -> None:
    script = [
        fault(status=503),
        Reply(calls=[call("fail", reason="no")]),
        Reply(final="It failed."),
    ]
    with MockVLLM(script) as mock:
        metrics = await run_with_metrics(tmp_path, mock.url, ("weather", "Try."))
    offline = await run_with_metrics(tmp_path, "http://127.0.0.1:9/v1", ("weather", "Hi"))
    found = samples(metrics)
    assert found['agent_runtime_model_retries_total{backend="mock",cause="http_503"}'] == 1
    assert found['agent_runtime_tool_calls_total{agent="weather",tool="fail"}'] == 1
    key = 'agent_runtime_tool_call_failures_total{agent="weather",error="error",tool="fail"}'
    assert found[key] == 1
    assert found['agent_runtime_runs_total{agent="weather",outcome="completed"}'] == 1
    lost = samples(offline)
    assert lost['agent_runtime_runs_total{agent="weather",outcome="failed"}'] == 1
    assert lost['agent_runtime_model_retries_total{backend="mock",cause="connection"}'] == 2
    assert lost['agent_runtime_model_calls_total{agent="weather"}'] == 1
    key = 'agent_runtime_model_call_failures_total{agent="weather",error="BackendUnavailableError"}'
    assert lost[key] == 1
    assert lost['agent_runtime_runs_in_flight{agent="weather"}'] == 0


async def test_a_run_counts_for_the_agent_asked_for_and_calls_for_the_agent_that_made_them(
    tmp_path: Path,
) -> None:
    script = [Reply(calls=[call("transfer_to_weather")]), Reply(final="Warm.")]
    with MockVLLM(script) as mock:
        metrics = await run_with_metrics(tmp_path, mock.url, ("triage", "Rome?"))
    found = samples(metrics)
    assert found['agent_runtime_runs_total{agent="triage",outcome="completed"}'] == 1
    assert 'agent_runtime_runs_total{agent="weather",outcome="completed"}' not in found
    assert found['agent_runtime_model_calls_total{agent="triage"}'] == 1
    assert found['agent_runtime_model_calls_total{agent="weather"}'] == 1


def record(kind: str, trace: str = "t1", **fields: Any) -> dict[str, Any]:
    return {"trace_id": trace, "type": kind, "agent": "a", **fields}


@pytest.mark.parametrize(
    ("end", "outcome"),
    [
        pytest.param({"outcome": "completed"}, "completed", id="completed"),
        pytest.param({"outcome": "awaiting_approval"}, "incomplete", id="awaiting-approval"),
        pytest.param(
            {"outcome": "failed", "error": "RunLimitError: max_turns"}, "incomplete", id="limit"
        ),
        pytest.param({"outcome": "failed", "error": "RunError: bad"}, "failed", id="failed"),
        pytest.param({"outcome": "cancelled", "error": "cancelled"}, "cancelled", id="cancelled"),
    ],
)
def test_run_outcomes(end: dict[str, Any], outcome: str) -> None:
    metrics = Metrics()
    metrics.observe_record(record("run_start", time=100.0))
    assert samples(metrics)['agent_runtime_runs_in_flight{agent="a"}'] == 1
    metrics.observe_record(record("run_end", time=101.5, **end))
    found = samples(metrics)
    assert found[f'agent_runtime_runs_total{{agent="a",outcome="{outcome}"}}'] == 1
    assert found[f'agent_runtime_run_duration_seconds_sum{{agent="a",outcome="{outcome}"}}'] == 1.5
    assert found['agent_runtime_runs_in_flight{agent="a"}'] == 0


@pytest.mark.parametrize(
    ("tool_error", "label"),
    [
        pytest.param({"error": "abandoned"}, "abandoned", id="abandoned"),
        pytest.param({"error": "SystemExit"}, "exit", id="exit"),
        pytest.param({"error": "unsendable result"}, "unsendable", id="unsendable"),
        pytest.param({"server": "files", "detail": "down"}, "mcp", id="mcp"),
    ],
)
def test_tool_errors_name_the_failure_of_the_call_that_follows(
    tool_error: dict[str, Any], label: str
) -> None:
    metrics = Metrics()
    metrics.observe_record(record("run_start", time=1.0))
    metrics.observe_record(record("tool_error", name="t", **tool_error))
    metrics.observe_record(record("tool_call", name="t", duration_ms=5.0, failed=True))
    metrics.observe_record(record("tool_call", name="t", duration_ms=5.0, failed=False))
    found = samples(metrics)
    assert found['agent_runtime_tool_calls_total{agent="a",tool="t"}'] == 2
    failures = {name: value for name, value in found.items() if "failures_total" in name}
    key = f'agent_runtime_tool_call_failures_total{{agent="a",error="{label}",tool="t"}}'
    assert failures == {key: 1}


@pytest.mark.parametrize(
    ("cause", "label"),
    [
        ("HTTP 503: the server is overloaded", "http_503"),
        ("HTTP 429: too many requests", "http_429"),
        ("connection refused", "connection"),
        ("connection failed (Name or service not known)", "connection"),
        ("the connection broke (ReadError)", "connection"),
        ("the request timed out", "timeout"),
        ("the model call timed out", "timeout"),
        ("the answer broke off (RemoteProtocolError)", "stream"),
        ("an error in the stream: engine died", "stream"),
        ("an answer with only reasoning: no message and no tool call", "answer"),
    ],
)
def test_retry_causes_become_few_label_values(cause: str, label: str) -> None:
    assert retry_cause_label(cause) == label


def test_metrics_are_never_in_the_process_wide_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_record(record("run_start", time=1.0))
    assert 'agent_runtime_runs_in_flight{agent="a"}' not in samples(second)
    assert REGISTRY.get_sample_value("agent_runtime_runs_in_flight", {"agent": "a"}) is None


def test_names_follow_the_prometheus_conventions() -> None:
    metrics = Metrics()
    metrics.observe_record(record("run_start", time=1.0))
    families = text_string_to_metric_families(metrics.render()[0].decode())
    kinds = {family.name: family.type for family in families}
    assert all(name.startswith("agent_runtime_") for name in kinds)
    for name, kind in kinds.items():
        if kind == "histogram":
            assert name.endswith("_seconds"), name
        if kind == "counter":  # the parser gives counters without their `_total`
            assert not name.endswith(("_total", "_seconds")), name


# -- serving ------------------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_port_of_its_own() -> None:
    metrics = Metrics()
    metrics.observe_record(record("run_start", time=1.0))
    server = metrics.serve("127.0.0.1", 0)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(server.url, timeout=10) as response:
            text = response.read().decode()
            content_type = response.headers["Content-Type"]
    finally:
        server.close()
    assert content_type.startswith("text/plain")
    assert 'agent_runtime_runs_in_flight{agent="a"} 1.0' in text.splitlines()
    with socket.socket() as sock:  # nothing listens there any more
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))


def test_serve_on_a_taken_port_says_so(taken_port: int) -> None:
    with pytest.raises(AgentRuntimeError) as caught:
        Metrics().serve("127.0.0.1", taken_port)
    assert str(caught.value) == (
        f"cannot serve the metrics on 127.0.0.1:{taken_port}: Address already in use. Choose "
        "another port, or an address of this machine."
    )


def test_the_backend_error_class_is_the_model_failure_label() -> None:
    metrics = Metrics()
    metrics.observe_record(record("run_start", time=1.0))
    metrics.observe_record(
        record("run_end", time=2.0, outcome="failed", error="BackendError: HTTP 500 after 3")
    )
    found = samples(metrics)
    assert found['agent_runtime_model_call_failures_total{agent="a",error="BackendError"}'] == 1
    assert found['agent_runtime_runs_total{agent="a",outcome="failed"}'] == 1
    assert BackendUnavailableError.__name__ not in json.dumps(found)
