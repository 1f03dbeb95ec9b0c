"""OpenTelemetry: runs as GenAI spans, in the SDK's in-memory exporter and, over OTLP/HTTP, in
a collector in this process configured by the standard variables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent_runtime import BackendUnavailableError, ConfigError, Runtime
from agent_runtime.config import load_config
from agent_runtime.otel import OtelTracing, agent_targets, otel_tracing, otlp_settings
from agent_runtime.redact import Redactor
from agent_runtime.testing import MockVLLM, Reply, call, fault

MODEL = "openai/gpt-oss-20b"
WAIT_S = 10.0
OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
)


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


def project(
    tmp_path: Path, tracing: str = "{enabled: false, include_sensitive_data: true}"
) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        f"sessions: {{path: {tmp_path / 'sessions.sqlite3'}}}\n"
        f"tracing: {tracing}\n"
        "backends:\n"
        "  mock: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 2,\n"
        "         retry_delay_s: 0.01, retry_max_delay_s: 0.01}\n"
        "tools:\n"
        "  get_weather: {function: 'tests.test_otel:get_weather'}\n"
        "  fail: {function: 'tests.test_otel:fail'}\n"
        "agents:\n"
        "  weather: {instructions: Weather., tools: [get_weather, fail]}\n"
        "  triage: {instructions: Hand over., handoffs: [weather]}\n"
        "  planner: {instructions: Ask., agent_tools: [weather]}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(autouse=True)
def _no_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own OTEL_* variables play no part in these tests."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@contextlib.asynccontextmanager
async def traced(
    tmp_path: Path, mock: MockVLLM, *, sensitive: bool = True
) -> AsyncIterator[tuple[Runtime, InMemorySpanExporter]]:
    """A runtime of the test project whose runs go to an in-memory exporter; the spans are all
    there when the block has ended."""
    memory = InMemorySpanExporter()
    async with Runtime.from_yaml(project(tmp_path), environ={"MOCK_URL": mock.url}) as runtime:
        tracing = OtelTracing(
            lambda: memory,
            include_sensitive_data=sensitive,
            redactor=runtime.redactor,
            agents=agent_targets(runtime.config),
        )
        stop = tracing.attach(runtime)
        try:
            yield runtime, memory
        finally:
            stop()
            tracing.close()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_hex(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def assert_within(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.start_time is not None and child.end_time is not None
    assert parent.start_time is not None and parent.end_time is not None
    assert parent.start_time <= child.start_time <= child.end_time <= parent.end_time


# -- spans of a run -----------------------------------------------------------------------------


async def test_a_run_is_an_invoke_agent_span_with_chat_and_execute_tool_children(
    tmp_path: Path,
) -> None:
    script = [
        Reply(reasoning="Look it up.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Sunny.", final="Sun on Tokyo."),
    ]
    with MockVLLM(script) as mock:
        async with traced(tmp_path, mock) as (runtime, memory):
            result = await runtime.run("weather", "Tokyo?", session="s-1")
    spans = memory.get_finished_spans()
    names = by_name(spans)
    assert sorted(names) == [
        "chat openai/gpt-oss-20b",
        "execute_tool get_weather",
        "invoke_agent weather",
    ]
    (root,) = names["invoke_agent weather"]
    first, second = sorted(names["chat openai/gpt-oss-20b"], key=lambda span: span.start_time or 0)
    (tool,) = names["execute_tool get_weather"]

    assert {trace_hex(span) for span in spans} == {result.trace_id.removeprefix("trace_")}
    assert root.parent is None
    assert {parent_of(span) for span in (first, second, tool)} == {span_id(root)}
    for span in (first, tool, second):
        assert_within(span, root)
    assert first.end_time is not None and tool.start_time is not None
    assert first.end_time <= tool.start_time
    assert tool.end_time is not None and second.start_time is not None
    assert tool.end_time <= second.start_time

    assert (root.kind, first.kind, tool.kind) == (
        SpanKind.INTERNAL,
        SpanKind.CLIENT,
        SpanKind.INTERNAL,
    )
    assert dict(root.attributes or {}) | {"gen_ai.input.messages": None} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "vllm",
        "gen_ai.agent.name": "weather",
        "gen_ai.request.model": MODEL,
        "gen_ai.conversation.id": "s-1",
        "gen_ai.input.messages": None,
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "Sun on Tokyo."}],
                    "finish_reason": "stop",
                }
            ]
        ),
        "gen_ai.usage.input_tokens": result.usage.input_tokens,
        "gen_ai.usage.output_tokens": result.usage.output_tokens,
        "gen_ai.usage.reasoning.output_tokens": result.usage.reasoning_tokens,
        "agent_runtime.outcome": "completed",
        "agent_runtime.turns": 2,
    }
    assert json.loads(str((root.attributes or {})["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "Tokyo?"}]}
    ]
    chat = dict(first.attributes or {})
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == MODEL
    assert chat["gen_ai.agent.name"] == "weather"
    assert str(chat["gen_ai.response.id"]).startswith("resp")
    assert isinstance(chat["gen_ai.usage.input_tokens"], int)
    assert isinstance(chat["gen_ai.usage.output_tokens"], int)
    assert chat["gen_ai.usage.input_tokens"] > 0
    assert (chat["server.address"], chat["server.port"]) == (
        "127.0.0.1",
        int(mock.url.split(":")[2].split("/")[0]),
    )
    output = json.loads(str(chat["gen_ai.output.messages"]))
    assert output[0]["finish_reason"] == "tool_call"
    assert output[0]["parts"][0] == {"type": "reasoning", "content": "Look it up."}
    assert output[0]["parts"][1]["name"] == "get_weather"
    assert json.loads(output[0]["parts"][1]["arguments"]) == {"city": "Tokyo"}
    (call_item,) = [item for item in result.items if item.type == "tool_call"]
    assert dict(tool.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": call_item.call_id,
        "gen_ai.tool.type": "function",
        "gen_ai.agent.name": "weather",
        "gen_ai.conversation.id": "s-1",
        "gen_ai.tool.call.arguments": '{"city":"Tokyo"}',
        "gen_ai.tool.call.result": '{"city": "Tokyo", "condition": "sunny"}',
    }
    assert all(span.status.status_code == StatusCode.UNSET for span in spans)
    assert root.resource.attributes["service.name"] == "agent-runtime"


async def test_a_run_inside_a_span_of_the_application_joins_its_trace(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    application = TracerProvider()
    with MockVLLM([Reply(final="Hi.")]) as mock:
        async with traced(tmp_path, mock) as (runtime, memory):
            with application.get_tracer("app").start_as_current_span("GET /ask") as request:
                await runtime.run("weather", "Hi")
    application.shutdown()
    names = by_name(memory.get_finished_spans())
    (root,) = names["invoke_agent weather"]
    assert root.parent is not None
    assert root.parent.span_id == request.get_span_context().span_id
    assert trace_hex(root) == f"{request.get_span_context().trace_id:032x}"
    (chat,) = names["chat openai/gpt-oss-20b"]
    assert parent_of(chat) == span_id(root)


async def test_without_sensitive_data_no_message_content_is_sent(tmp_path: Path) -> None:
    script = [Reply(calls=[call("get_weather", city="Oslo")]), Reply(final="Snow.")]
    with MockVLLM(script) as mock:
        async with traced(tmp_path, mock, sensitive=False) as (runtime, memory):
            await runtime.run("weather", "Oslo?")
    spans = memory.get_finished_spans()
    assert len(spans) == 4
    keys = {key for span in spans for key in (span.attributes or {})}
    content = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments",
               "gen_ai.tool.call.result"}  # fmt: skip
    assert keys & content == set()
    assert "gen_ai.tool.name" in keys


async def test_a_handoff_is_an_event_and_an_invoke_agent_span_of_the_new_agent(
    tmp_path: Path,
) -> None:
    script = [
        Reply(calls=[call("transfer_to_weather")]),
        Reply(calls=[call("get_weather", city="Rome")]),
        Reply(final="Warm."),
    ]
    with MockVLLM(script) as mock:
        async with traced(tmp_path, mock) as (runtime, memory):
            await runtime.run("triage", "Rome?")
    names = by_name(memory.get_finished_spans())
    (root,) = names["invoke_agent triage"]
    (weather,) = names["invoke_agent weather"]
    chats = sorted(names["chat openai/gpt-oss-20b"], key=lambda span: span.start_time or 0)
    (tool,) = names["execute_tool get_weather"]
    assert parent_of(weather) == span_id(root)
    assert [parent_of(span) for span in chats] == [
        span_id(root),
        span_id(weather),
        span_id(weather),
    ]
    assert [dict(span.attributes or {})["gen_ai.agent.name"] for span in chats] == [
        "triage", "weather", "weather",
    ]  # fmt: skip
    assert parent_of(tool) == span_id(weather)
    assert_within(weather, root)
    for span in chats[1:]:
        assert_within(span, weather)
    (event,) = [event for event in root.events if event.name == "agent_runtime.handoff"]
    assert dict(event.attributes or {}) == {
        "gen_ai.agent.name": "triage",
        "agent_runtime.to_agent": "weather",
    }


async def test_the_calls_of_an_agent_used_as_a_tool_are_under_its_tool_call(
    tmp_path: Path,
) -> None:
    script = [
        Reply(calls=[call("weather", input="Oslo?")]),
        Reply(calls=[call("get_weather", city="Oslo")]),
        Reply(final="Snow."),
        Reply(final="It snows."),
    ]
    with MockVLLM(script) as mock:
        async with traced(tmp_path, mock) as (runtime, memory):
            await runtime.run("planner", "Weather?")
    spans = memory.get_finished_spans()
    names = by_name(spans)
    (root,) = names["invoke_agent planner"]
    (tool,) = names["execute_tool weather"]
    (nested,) = names["invoke_agent weather"]
    (inner_tool,) = names["execute_tool get_weather"]
    chats = sorted(names["chat openai/gpt-oss-20b"], key=lambda span: span.start_time or 0)
    assert parent_of(tool) == span_id(root)
    assert parent_of(nested) == span_id(tool)
    assert [parent_of(span) for span in chats] == [
        span_id(root), span_id(nested), span_id(nested), span_id(root),
    ]  # fmt: skip
    assert parent_of(inner_tool) == span_id(nested)
    assert_within(nested, tool)
    assert_within(inner_tool, nested)
    assert [dict(span.attributes or {})["gen_ai.agent.name"] for span in chats] == [
        "planner", "weather", "weather", "planner",
    ]  # fmt: skip


@pytest.mark.parametrize("sensitive", [True, False])
async def test_a_tool_that_fails_sets_the_error_status_of_its_span(
    tmp_path: Path, sensitive: bool
) -> None:
    script = [Reply(calls=[call("fail", reason="no")]), Reply(final="It failed.")]
    with MockVLLM(script) as mock:
        async with traced(tmp_path, mock, sensitive=sensitive) as (runtime, memory):
            await runtime.run("weather", "Try.")
    (tool,) = by_name(memory.get_finished_spans())["execute_tool fail"]
    assert tool.status.status_code == StatusCode.ERROR
    assert (tool.attributes or {})["error.type"] == "tool_error"


async def test_retries_are_events_of_the_model_call_that_needed_them(tmp_path: Path) -> None:
    script = [fault(status=503), Reply(final="Fine.")]
    with MockVLLM(script) as mock:
        async with traced(tmp_path, mock) as (runtime, memory):
            await runtime.run("weather", "Hi")
    (chat,) = by_name(memory.get_finished_spans())["chat openai/gpt-oss-20b"]
    (retry,) = chat.events
    assert retry.name == "agent_runtime.retry"
    attributes = dict(retry.attributes or {})
    assert (attributes["agent_runtime.backend"], attributes["agent_runtime.attempt"]) == ("mock", 1)
    assert "503" in str(attributes["agent_runtime.cause"])


async def test_a_failed_run_sets_the_error_status_and_type(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    nobody = "http://127.0.0.1:9/v1"  # nothing answers there
    async with Runtime.from_yaml(project(tmp_path), environ={"MOCK_URL": nobody}) as runtime:
        tracing = OtelTracing(lambda: memory, redactor=runtime.redactor)
        tracing.attach(runtime)
        with pytest.raises(BackendUnavailableError):
            await runtime.run("weather", "Hi")
        tracing.close()
    (root,) = memory.get_finished_spans()
    assert root.name == "invoke_agent weather"
    assert root.status.status_code == StatusCode.ERROR
    assert str(root.status.description).startswith("BackendUnavailableError: ")
    assert (root.attributes or {})["error.type"] == "BackendUnavailableError"
    assert (root.attributes or {})["agent_runtime.outcome"] == "failed"
    assert [event.name for event in root.events] == ["agent_runtime.retry"] * 2


async def test_secrets_are_masked_in_what_is_sent(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    tracing = OtelTracing(
        lambda: memory, include_sensitive_data=True, redactor=Redactor(["sk-secret-123456"])
    )
    trace_id = "trace_" + "ab" * 16
    tracing({"trace_id": trace_id, "type": "run_start", "time": 10.0, "agent": "a",
             "input": "my key is sk-secret-123456"})  # fmt: skip
    tracing({"trace_id": trace_id, "type": "run_end", "time": 11.0, "agent": "a",
             "outcome": "failed", "error": "RunError: bad sk-secret-123456"})  # fmt: skip
    tracing.close()
    (span,) = memory.get_finished_spans()
    assert "sk-secret-123456" not in json.dumps(dict(span.attributes or {}))
    assert "sk-secret-123456" not in str(span.status.description)
    assert trace_hex(span) == "ab" * 16
    assert (span.start_time, span.end_time) == (10_000_000_000, 11_000_000_000)


def test_call_times_come_from_started_at_else_from_the_duration() -> None:
    memory = InMemorySpanExporter()
    tracing = OtelTracing(lambda: memory)
    trace_id = "trace_" + "cd" * 16
    tracing({"trace_id": trace_id, "type": "run_start", "time": 100.0, "agent": "a"})
    tracing({"trace_id": trace_id, "type": "model_call", "time": 103.0, "agent": "a",
             "model": "m", "started_at": 101.0, "duration_ms": 1500.0})  # fmt: skip
    tracing({"trace_id": trace_id, "type": "tool_call", "time": 105.0, "agent": "a",
             "name": "t", "duration_ms": 500.0})  # fmt: skip
    tracing({"trace_id": trace_id, "type": "tool_call", "time": 106.0, "agent": "a",
             "name": "u", "duration_ms": None})  # fmt: skip
    tracing({"trace_id": trace_id, "type": "run_end", "time": 107.0, "agent": "a",
             "outcome": "completed"})  # fmt: skip
    tracing.close()
    times = {span.name: (span.start_time, span.end_time) for span in memory.get_finished_spans()}
    second = 1_000_000_000
    assert times == {
        "chat m": (101 * second, 102 * second + second // 2),
        "execute_tool t": (104 * second + second // 2, 105 * second),
        "execute_tool u": (106 * second, 106 * second),
        "invoke_agent a": (100 * second, 107 * second),
    }


# -- configuration ------------------------------------------------------------------------------


def load(tmp_path: Path, tracing: str) -> Any:
    return load_config(project(tmp_path, tracing), environ={"MOCK_URL": "http://127.0.0.1:9/v1"})


@pytest.mark.parametrize(
    ("tracing", "environ", "endpoint", "headers", "service"),
    [
        pytest.param("{}", {}, None, None, None, id="nothing"),
        pytest.param(
            "{otlp_endpoint: 'http://collector:4318', otlp_headers: {x-key: k1},"
            " service_name: agents}",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318", "OTEL_SERVICE_NAME": "env"},
            "http://collector:4318/v1/traces", {"x-key": "k1"}, "agents", id="yaml-wins",
        ),
        pytest.param(
            "{otlp_endpoint: 'https://collector/otlp/v1/traces'}", {},
            "https://collector/otlp/v1/traces", {}, "agent-runtime", id="yaml-full-url",
        ),
        pytest.param(
            "{}",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
             "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc,x-team=ml",
             "OTEL_SERVICE_NAME": "svc"},
            "http://collector:4318/v1/traces", {"authorization": "Bearer abc", "x-team": "ml"},
            "svc", id="environment",
        ),
        pytest.param(
            "{}",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
             "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/custom",
             "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_HEADERS": "b=2"},
            "http://traces:4318/custom", {"a": "1"}, "agent-runtime", id="traces-variables-win",
        ),
        pytest.param(
            "{otlp_endpoint: ''}", {}, None, None, None, id="empty-endpoint-is-off",
        ),
    ],
)  # fmt: skip
def test_otlp_settings(
    tmp_path: Path,
    tracing: str,
    environ: dict[str, str],
    endpoint: str | None,
    headers: dict[str, str] | None,
    service: str | None,
) -> None:
    settings = otlp_settings(load(tmp_path, tracing), environ)
    if endpoint is None:
        assert settings is None
        return
    assert settings is not None
    assert (settings.endpoint, dict(settings.headers), settings.service_name) == (
        endpoint, headers, service,
    )  # fmt: skip


def test_an_otlp_endpoint_that_is_not_an_http_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "{otlp_endpoint: 'grpc://collector:4317'}")
    assert "tracing.otlp_endpoint: expected the http:// or https:// URL of an OTLP/HTTP " \
        "collector, e.g. http://localhost:4318" in str(caught.value)  # fmt: skip


def test_a_bad_endpoint_variable_is_a_warning_and_nothing_is_exported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load(tmp_path, "{}")
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}
    with caplog.at_level(logging.WARNING, logger="agent_runtime.otel"):
        assert otel_tracing(config, redactor=Redactor(), environ=environ) is None
    assert caplog.messages == [
        "runs are not exported: $OTEL_EXPORTER_OTLP_ENDPOINT is 'collector:4317/v1/traces', "
        "not the http:// or https:// URL of an OTLP/HTTP collector (traces are exported over "
        "OTLP/HTTP only), e.g. http://localhost:4318. Set it to one, or unset it to export "
        "nothing."
    ]


@pytest.fixture
def without_the_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`import opentelemetry.sdk…` fails as it does when the extra is not installed."""
    for name in list(sys.modules):
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter", None)
    yield


def test_an_endpoint_without_the_sdk_installed_is_a_config_error(
    tmp_path: Path, without_the_sdk: None
) -> None:
    path = project(tmp_path, "{otlp_endpoint: 'http://127.0.0.1:4318'}")
    with pytest.raises(ConfigError) as caught:
        Runtime.from_yaml(path, environ={"MOCK_URL": "http://127.0.0.1:9/v1"})
    assert str(caught.value) == (
        f"{path}: tracing.otlp_endpoint: exporting traces needs the OpenTelemetry SDK and its "
        "OTLP/HTTP exporter, which are not installed: pip install 'agent-runtime[otel]'. Or "
        "remove `otlp_endpoint` to export nothing."
    )


def test_an_endpoint_variable_without_the_sdk_is_only_a_warning(
    tmp_path: Path, without_the_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    config = load(tmp_path, "{}")
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    with caplog.at_level(logging.WARNING, logger="agent_runtime.otel"):
        assert otel_tracing(config, redactor=Redactor(), environ=environ) is None
    assert caplog.messages == [
        "$OTEL_EXPORTER_OTLP_ENDPOINT is set, but runs are not exported: the OpenTelemetry "
        "SDK is not installed (pip install 'agent-runtime[otel]')"
    ]


def test_nothing_is_exported_unless_configured(tmp_path: Path) -> None:
    assert otel_tracing(load(tmp_path, "{}"), redactor=Redactor(), environ={}) is None


# -- over OTLP/HTTP -----------------------------------------------------------------------------


class Collector:
    """An OTLP/HTTP trace collector: keeps each request's decoded body and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[ExportTraceServiceRequest, dict[str, str]]] = []
        self.app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])

    async def traces(self, request: Request) -> Response:
        body = ExportTraceServiceRequest()
        body.ParseFromString(await request.body())
        self.requests.append((body, dict(request.headers)))
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) of every span received."""
        found = []
        for body, _ in self.requests:
            for resource_spans in body.resource_spans:
                resource = {
                    kv.key: kv.value.string_value for kv in resource_spans.resource.attributes
                }
                for scope in resource_spans.scope_spans:
                    found += [(resource, span) for span in scope.spans]
        return found


@contextlib.asynccontextmanager
async def collecting() -> AsyncIterator[tuple[str, Collector]]:
    """A collector on 127.0.0.1 (a free port), served in this loop; yields its URL."""
    collector = Collector()
    server = uvicorn.Server(
        uvicorn.Config(collector.app, host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(WAIT_S):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", collector
    finally:
        server.should_exit = True
        async with asyncio.timeout(WAIT_S):
            await task


async def test_a_run_reaches_a_collector_configured_by_the_standard_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = [Reply(calls=[call("get_weather", city="Lima")]), Reply(final="Mild.")]
    async with collecting() as (url, collector):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20tok-1")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "weather-service")
        with MockVLLM(script) as mock:
            async with Runtime.from_yaml(
                project(tmp_path, "{enabled: false}"), environ={"MOCK_URL": mock.url}
            ) as runtime:
                result = await runtime.run("weather", "Lima?")
        # closing the runtime has sent every span
        spans = collector.spans()
    assert {headers["authorization"] for _, headers in collector.requests} == {"Bearer tok-1"}
    assert {resource["service.name"] for resource, _ in spans} == {"weather-service"}
    assert sorted(span.name for _, span in spans) == [
        "chat openai/gpt-oss-20b", "chat openai/gpt-oss-20b", "execute_tool get_weather",
        "invoke_agent weather",
    ]  # fmt: skip
    assert {span.trace_id.hex() for _, span in spans} == {result.trace_id.removeprefix("trace_")}
    (root,) = [span for _, span in spans if span.name == "invoke_agent weather"]
    assert root.parent_span_id == b""
    children = [span for _, span in spans if span is not root]
    assert {span.parent_span_id for span in children} == {root.span_id}
    assert all(
        root.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano
        <= root.end_time_unix_nano
        for span in children
    )  # fmt: skip
    attributes = {kv.key: kv.value for kv in root.attributes}
    assert attributes["gen_ai.operation.name"].string_value == "invoke_agent"
    assert attributes["gen_ai.agent.name"].string_value == "weather"
    # tracing.include_sensitive_data is off by default: no content leaves the machine
    keys = {kv.key for _, span in spans for kv in span.attributes}
    assert not keys & {"gen_ai.input.messages", "gen_ai.output.messages",
                       "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}  # fmt: skip


def test_records_of_every_kind_from_a_resumed_run() -> None:
    memory = InMemorySpanExporter()
    tracing = OtelTracing(lambda: memory, include_sensitive_data=True, max_field_chars=10)
    trace_id = "trace_" + "ef" * 16

    def send(kind: str, at: float, **fields: Any) -> None:
        tracing({"trace_id": trace_id, "type": kind, "time": at, "agent": "a", **fields})

    tracing({"trace_id": "trace_other", "type": "tool_call", "time": 1.0, "name": "x"})
    send("run_resume", 1.0)
    send("tool_error", 1.5, name="slow", error="abandoned", detail="did not stop")
    send("tool_call", 2.0, name="slow", duration_ms=500.0, output="Error: `slow` took too long")
    send("output_retry", 2.1, attempt=1, output_retries=2, answer="secret answer", problems="x")
    send("handoff", 3.0, to_agent="b")
    send("handoff", 4.0, agent="b", to_agent="c")
    send("model_call", 5.0, agent="d", model="m", duration_ms=100.0)  # an agent tool's...
    assert tracing.flush()  # ...whose own tool call never comes
    send("run_end", 6.0, agent="c", outcome="awaiting_approval")
    trace_id = "trace_" + "12" * 16
    send("run_start", 7.0)  # still open at close: ended as it is
    tracing.close()
    names = by_name(memory.get_finished_spans())
    assert sorted(names) == [
        "chat m", "execute_tool slow", "invoke_agent a", "invoke_agent b", "invoke_agent c",
    ]  # fmt: skip
    (root, unfinished) = names["invoke_agent a"]
    assert (root.attributes or {})["agent_runtime.resumed"] is True
    assert (root.attributes or {})["agent_runtime.outcome"] == "awaiting_approval"
    (tool,) = names["execute_tool slow"]
    assert tool.status.status_code == StatusCode.ERROR
    assert (tool.attributes or {})["error.type"] == "abandoned"
    assert (tool.attributes or {})["gen_ai.tool.call.result"] == "Error: `sl…[truncated 17 chars]"
    assert [(event.name, dict(event.attributes or {})) for event in root.events] == [
        ("agent_runtime.output_retry",
         {"agent_runtime.attempt": 1, "agent_runtime.output_retries": 2}),
        ("agent_runtime.handoff", {"gen_ai.agent.name": "a", "agent_runtime.to_agent": "b"}),
        ("agent_runtime.handoff", {"gen_ai.agent.name": "b", "agent_runtime.to_agent": "c"}),
    ]  # fmt: skip
    (b,) = names["invoke_agent b"]
    (c,) = names["invoke_agent c"]
    assert (b.end_time, c.start_time) == (4_000_000_000, 4_000_000_000)
    (chat,) = names["chat m"]
    assert parent_of(chat) == span_id(c)
    assert unfinished.end_time is not None and unfinished.end_time > 7_000_000_000


class Stuck(SpanExporter):
    """An exporter whose collector never answers: `export` waits until `shutdown`."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.stopped.wait(WAIT_S)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.stopped.set()


def test_closing_gives_up_on_a_collector_that_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stuck = Stuck()
    tracing = OtelTracing(lambda: stuck)
    trace_id = "trace_" + "aa" * 16
    tracing({"trace_id": trace_id, "type": "run_start", "time": 1.0, "agent": "a"})
    tracing({"trace_id": trace_id, "type": "run_end", "time": 2.0, "agent": "a",
             "outcome": "completed"})  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="agent_runtime.otel"):
        tracing.close(timeout_s=0.05)
    assert stuck.stopped.is_set()
    assert caplog.messages == [
        "the OpenTelemetry collector did not take the last spans within 0.05 s; they are dropped"
    ]
