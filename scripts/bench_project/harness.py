"""The measuring side of scripts/bench.py: HTTP timing, the four ways to run an agent, meters.

Every HTTP client here sends through `TimedTransport`, which notes when each request enters and
leaves the HTTP transport (socket, loopback and the mock's own time). A `Driver` runs one prompt
to its final answer and, one run at a time, records per model call its *request path* (the time
the SDK model's `get_response`, or the hand loop's call, took less its time in the transport)
and the client's *turn* time (everything between two requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import ssl
import statistics
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# scripts/ is on sys.path when scripts/bench.py runs: the mock process and /proc accounting.
import bench_mock
import bench_tools
import httpx
import httpx2
from agents import Agent, ModelSettings, OpenAIResponsesModel, RunConfig, Runner, function_tool
from openai import AsyncOpenAI
from openai.types.responses import ResponseReasoningTextDeltaEvent, ResponseTextDeltaEvent
from openai.types.shared import Reasoning

from agent_runtime import ReasoningDelta, RunFinished, Runtime, TextDelta, load_config

PROJECT = Path(__file__).resolve().parent / "agents.yaml"
MODEL = "openai/gpt-oss-20b"
PROMPT = "What's the weather in Tokyo?"
LONG_PROMPT = "Read about Tokyo page by page, then sum it up in one sentence."
TOOLS: dict[str, Callable[..., str]] = {
    "get_weather": bench_tools.get_weather,
    "read_page": bench_tools.read_page,
}
REQUEST_TIMEOUT_S = 300.0
KEEPALIVE_S = 2.0


# -- measuring -----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 0) -> str:
    """`median (min-max)` of `values` times `scale`."""
    if not values:
        return "-"
    f = f"{{:,.{digits}f}}"
    lo, mid, hi = min(values) * scale, median(values) * scale, max(values) * scale
    if len(values) == 1:
        return f.format(mid)
    return f"{f.format(mid)} ({f.format(lo)}-{f.format(hi)})"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def mock_cpu(mock: bench_mock.MockProcess) -> float:
    return bench_mock.process_cpu_seconds(mock.pid)


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Wall time and CPU time over a stretch: this process (the client), the mock, the rest."""

    wall_s: float
    cpu_s: float
    mock_cpu_s: float
    busy_s: float  # the whole machine's

    @property
    def other_cpu_s(self) -> float:
        """Everything else on the machine meanwhile (other processes, the kernel)."""
        return max(0.0, self.busy_s - self.cpu_s - self.mock_cpu_s)

    def share(self, seconds: float) -> str:
        return f"{seconds / self.wall_s:.0%}" if self.wall_s > 0 else "-"


class Meter:
    """Measures a `Usage`: `with Meter(mock) as meter: ...; meter.usage`."""

    def __init__(self, mock: bench_mock.MockProcess) -> None:
        self._mock = mock
        self._start = (0.0, 0.0, 0.0, 0.0)
        self.usage = Usage(wall_s=0.0, cpu_s=0.0, mock_cpu_s=0.0, busy_s=0.0)

    def _now(self) -> tuple[float, float, float, float]:
        return (
            time.perf_counter(),
            time.process_time(),
            mock_cpu(self._mock),
            bench_mock.machine_busy_seconds(),
        )

    def __enter__(self) -> Meter:
        self._start = self._now()
        return self

    def __exit__(self, *_: object) -> None:
        wall, cpu, served, busy = (b - a for a, b in zip(self._start, self._now(), strict=True))
        self.usage = Usage(wall_s=wall, cpu_s=cpu, mock_cpu_s=served, busy_s=busy)


class RetryCount(logging.Handler):
    """Counts model calls made again: by agent-runtime's retry layer or the openai client's."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        ours = record.name == "agent_runtime.backends.retry" and record.levelno >= logging.WARNING
        theirs = record.name == "openai._base_client" and str(record.msg).startswith("Retrying")
        self.count += ours or theirs

    def watch(self) -> None:
        """Listen to both loggers (the openai client reports its retries at INFO)."""
        for name in ("agent_runtime.backends.retry", "openai._base_client"):
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)
        openai_logger = logging.getLogger("openai._base_client")
        if not openai_logger.isEnabledFor(logging.INFO):
            openai_logger.setLevel(logging.INFO)  # no handler prints INFO: only we see it


RETRIES = RetryCount()


def rss_kib() -> int:
    return bench_mock.process_rss_kib(os.getpid())


def reset_peak_rss() -> None:
    """Start VmHWM afresh at the current RSS (Linux ≥ 4.0: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class TimedTransport(httpx2.AsyncBaseTransport):
    """httpx2's transport, noting each request's time inside it: socket, loopback and server."""

    def __init__(self, pool: int) -> None:
        # Idle connections expire before the mock's (uvicorn's) 5 s keep-alive time-out closes
        # them, so a request never goes out on a connection the server is closing.
        limits = httpx2.Limits(
            max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=KEEPALIVE_S
        )
        # Plain HTTP: an unused TLS context instead of loading certifi's bundle.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._inner = httpx2.AsyncHTTPTransport(limits=limits, verify=tls, trust_env=False)
        self.spans: list[tuple[float, float, int]] | None = None  # (enter, leave, body bytes)
        self.busy_s = 0.0  # total time requests spent inside, while recording spans

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        start = time.perf_counter()
        try:
            return await self._inner.handle_async_request(request)
        finally:
            if self.spans is not None:
                leave = time.perf_counter()
                size = int(request.headers.get("content-length", 0))
                self.spans.append((start, leave, size))
                self.busy_s += leave - start

    async def aclose(self) -> None:
        await self._inner.aclose()


def http_client(transport: TimedTransport, **options: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=transport, timeout=REQUEST_TIMEOUT_S, **options)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One sequential run: its wall time and, per model call, the client's share of it."""

    wall_s: float
    transport_s: float
    paths_s: list[float]  # request path of each model call
    http_s: list[float]  # time inside the HTTP transport of each request
    turns_s: list[float]  # client time before each request, then after the last one
    body_bytes: list[int]

    @property
    def calls(self) -> int:
        return len(self.body_bytes)

    @property
    def client_s(self) -> float:
        return self.wall_s - self.transport_s


class WrongAnswer(Exception):
    """A run ended with something other than the mock's final answer."""


def check_output(output: object) -> str:
    text = str(output)
    if not text.startswith("Done:"):
        raise WrongAnswer(f"unexpected final output {text[:80]!r}")
    return text


class Driver:
    """One way of running an agent against the mock: `run()` one prompt to its final answer."""

    label = ""

    def __init__(self, *, pool: int) -> None:
        self.transport = TimedTransport(pool)
        self._paths: list[float] | None = None

    async def run(self, prompt: str) -> str:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.transport.aclose()

    def _timed(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`call`, noting its request path (time less time in the transport) while recording."""

        async def timed(*args: Any, **kwargs: Any) -> Any:
            if self._paths is None:
                return await call(*args, **kwargs)
            start, before = time.perf_counter(), self.transport.busy_s
            try:
                return await call(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._paths.append(elapsed - (self.transport.busy_s - before))

        return timed

    async def measure(self, prompt: str) -> RunRecord:
        """One run with its per-call client times (runs must not overlap)."""
        self.transport.spans, self._paths = [], []
        start = time.perf_counter()
        try:
            check_output(await self.run(prompt))
            end = time.perf_counter()
            spans, paths = self.transport.spans, self._paths
        finally:
            self.transport.spans, self._paths = None, None
        turns, last = [], start
        for enter, leave, _ in spans:
            turns.append(enter - last)
            last = leave
        turns.append(end - last)
        return RunRecord(
            wall_s=end - start,
            transport_s=sum(leave - enter for enter, leave, _ in spans),
            paths_s=paths,
            http_s=[leave - enter for enter, leave, _ in spans],
            turns_s=turns,
            body_bytes=[size for _, _, size in spans],
        )


class RuntimeDriver(Driver):
    """agent-runtime: `Runtime.from_yaml(scripts/bench_project/agents.yaml).run(agent, ...)`."""

    def __init__(
        self, url: str, agent: str, state_dir: str, *, pool: int = 10, tracing: bool = True
    ) -> None:
        super().__init__(pool=pool)
        self.label = "agent-runtime" if tracing else "agent-runtime, tracing off"
        self.agent = agent
        self.runtime = Runtime.from_yaml(
            PROJECT,
            environ={"MOCK_URL": url, "BENCH_STATE_DIR": state_dir},
            http_client=http_client(self.transport),
            trace_path=None if tracing else False,
        )
        model: Any = self.runtime.agent(agent).model
        model.get_response = self._timed(model.get_response)

    async def run(self, prompt: str) -> str:
        result = await self.runtime.run(self.agent, prompt)
        return str(result.final_output)

    def stream(self, prompt: str) -> AsyncIterator[Any]:
        return self.runtime.stream(self.agent, prompt)

    async def aclose(self) -> None:
        await self.runtime.aclose()
        await super().aclose()


def sdk_agent(name: str, client: AsyncOpenAI) -> tuple[Agent[Any], int]:
    """The agent of agents.yaml built by hand on the bare Agents SDK, and its `max_turns`."""
    config = load_config(PROJECT, environ={})
    spec = config.spec.agents[name]
    effort = spec.model_settings.reasoning_effort if spec.model_settings else None
    agent = Agent(
        name=name,
        instructions=spec.instructions,
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
        model_settings=ModelSettings(reasoning=Reasoning(effort=effort)),
        tools=[function_tool(TOOLS[tool]) for tool in spec.tools],
    )
    return agent, config.max_turns_of(name)


class SdkDriver(Driver):
    """The bare Agents SDK: `Runner.run(Agent(model=OpenAIResponsesModel(...)), ...)`."""

    label = "bare Agents SDK"

    def __init__(self, url: str, agent: str, *, pool: int = 10) -> None:
        super().__init__(pool=pool)
        self.client = AsyncOpenAI(
            base_url=url, api_key="EMPTY", http_client=http_client(self.transport)
        )
        self.agent, self.max_turns = sdk_agent(agent, self.client)
        model: Any = self.agent.model
        model.get_response = self._timed(model.get_response)
        self.run_config = RunConfig(tracing_disabled=True)

    async def run(self, prompt: str) -> str:
        result = await Runner.run(
            self.agent, prompt, max_turns=self.max_turns, run_config=self.run_config
        )
        return str(result.final_output)

    def stream(self, prompt: str) -> Any:
        return Runner.run_streamed(
            self.agent, prompt, max_turns=self.max_turns, run_config=self.run_config
        )

    async def aclose(self) -> None:
        await self.client.close()
        await super().aclose()


def call_tool(name: str, arguments: str) -> str:
    return TOOLS[name](**json.loads(arguments))


class OpenAILoopDriver(Driver):
    """The lower bound on the official client: `responses.create`, append, call again."""

    label = "openai hand loop"

    def __init__(self, url: str, first_body: bytes, *, pool: int = 10) -> None:
        super().__init__(pool=pool)
        self.client = AsyncOpenAI(
            base_url=url, api_key="EMPTY", http_client=http_client(self.transport)
        )
        body = json.loads(first_body)
        self.params = {k: v for k, v in body.items() if k not in ("input", "include")}
        self.create = self._timed(self.client.responses.create)

    async def run(self, prompt: str) -> str:
        items: list[Any] = [{"role": "user", "content": prompt}]
        for _ in range(200):
            response = await self.create(input=items, **self.params)
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                return str(response.output_text)
            items += [item.model_dump(exclude_none=True) for item in response.output]
            items += [
                {
                    "type": "function_call_output",
                    "call_id": c.call_id,
                    "output": call_tool(c.name, c.arguments),
                }
                for c in calls
            ]
        raise WrongAnswer("no final answer in 200 turns")

    async def aclose(self) -> None:
        await self.client.close()
        await super().aclose()


class RawDriver(Driver):
    """Raw HTTP: httpx2 posting the body agent-runtime sends, extended turn by turn, JSON only.

    The first request is agent-runtime's own, captured from the mock's recorded requests; each
    later one appends the answer's output items (less their null `status`) and the tool's
    output, as the SDK does, so the bodies match agent-runtime's but for the generated ids.
    """

    label = "raw httpx2"

    def __init__(self, url: str, first_body: bytes, headers: dict[str, str], pool: int = 10):
        super().__init__(pool=pool)
        self.client = http_client(self.transport, base_url=url, headers=headers)
        self.template = json.loads(first_body)
        self.post = self._timed(self._post)

    async def _post(self, items: list[Any]) -> Any:
        body = json.dumps({**self.template, "input": items}, separators=(",", ":")).encode()
        response = await self.client.post("/responses", content=body)
        if response.status_code != 200:
            raise WrongAnswer(f"HTTP {response.status_code}: {response.text[:200]}")
        return json.loads(response.content)

    async def run(self, prompt: str) -> str:
        items: list[Any] = [{"role": "user", "content": prompt}]
        for _ in range(200):
            output = (await self.post(items))["output"]
            calls = [item for item in output if item["type"] == "function_call"]
            if not calls:
                message = next(item for item in output if item["type"] == "message")
                return str(message["content"][0]["text"])
            items += [
                {k: v for k, v in item.items() if k != "status" or v is not None} for item in output
            ]
            items += [
                {
                    "call_id": c["call_id"],
                    "output": call_tool(c["name"], c["arguments"]),
                    "type": "function_call_output",
                }
                for c in calls
            ]
        raise WrongAnswer("no final answer in 200 turns")

    async def aclose(self) -> None:
        await self.client.aclose()
        await super().aclose()


class HttpxDriver(RawDriver):
    """The same hand loop on httpx 0.28's `AsyncClient` with one shared pool of `pool`
    connections: the plain httpx client most hand-written loops use."""

    label = "raw httpx 0.28"

    def __init__(self, url: str, first_body: bytes, headers: dict[str, str], pool: int = 10):
        super().__init__(url, first_body, headers, pool)
        limits = httpx.Limits(
            max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=KEEPALIVE_S
        )
        self.httpx = httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S
        )

    async def _post(self, items: list[Any]) -> Any:
        body = json.dumps({**self.template, "input": items}, separators=(",", ":")).encode()
        response = await self.httpx.post("/responses", content=body)
        if response.status_code != 200:
            raise WrongAnswer(f"HTTP {response.status_code}: {response.text[:200]}")
        return json.loads(response.content)

    async def aclose(self) -> None:
        await self.httpx.aclose()
        await super().aclose()


# -- what agent-runtime sends, captured once -----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Captured:
    """Request bodies agent-runtime sent to an in-process mock, for the raw clients."""

    weather: tuple[bytes, bytes]  # weather-haiku: both turns
    long_first: bytes  # long-loop's first turn
    weather_stream: tuple[bytes, bytes]
    plain_stream: bytes
    headers: dict[str, str]


async def capture() -> Captured:
    from agent_runtime.testing import MockVLLM, ToolLoop

    with tempfile.TemporaryDirectory() as state:
        async with MockVLLM(default=ToolLoop(steps=1), seed=0) as mock:
            runtime = Runtime.from_yaml(
                PROJECT, environ={"MOCK_URL": mock.url, "BENCH_STATE_DIR": state}
            )
            async with runtime:
                await runtime.run("weather-haiku", PROMPT)
                # The tool loop calls the first tool offered: one read_page call, then answers.
                await runtime.run("long-loop", LONG_PROMPT)
                async for _ in runtime.stream("weather-haiku", PROMPT):
                    pass
                async for _ in runtime.stream("plain", PROMPT):
                    pass
            bodies = [request.body for request in mock.model_requests]
            skip = {"host", "content-length", "connection", "accept-encoding"}
            headers = {
                k: v for k, v in mock.model_requests[0].headers.items() if k.lower() not in skip
            }
    if len(bodies) != 7:
        raise RuntimeError(f"captured {len(bodies)} model requests, expected 7")
    return Captured(
        weather=(bodies[0], bodies[1]),
        long_first=bodies[2],
        weather_stream=(bodies[4], bodies[5]),
        plain_stream=bodies[6],
        headers=headers,
    )


# -- concurrent runs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Round:
    """One round of `runs` concurrent runs."""

    runs: int
    calls: int
    usage: Usage
    base_rss_kib: int
    peak_rss_kib: int
    heap_kib: float | None  # peak Python allocations over the start (tracemalloc), if traced
    errors: Counter[str]
    retries: int  # model calls made again (and succeeded, or the run is an error)

    @property
    def wall_s(self) -> float:
        return self.usage.wall_s

    @property
    def cpu_s(self) -> float:
        return self.usage.cpu_s


async def concurrent_round(
    driver: Driver,
    prompt: str,
    runs: int,
    calls_per_run: int,
    mock: bench_mock.MockProcess,
    *,
    trace_memory: bool = False,
) -> Round:
    """`runs` runs at once; with `trace_memory`, under tracemalloc (slower: a warm-up)."""

    async def one() -> str | None:
        try:
            check_output(await driver.run(prompt))
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc)[:120]}"
        return None

    gc.collect()
    base = rss_kib()
    reset_peak_rss()
    RETRIES.watch()
    retried = RETRIES.count
    if trace_memory:
        tracemalloc.start()
    try:
        heap0 = tracemalloc.get_traced_memory()[0] if trace_memory else 0
        with Meter(mock) as meter:
            outcomes = await asyncio.gather(*(one() for _ in range(runs)))
        heap = (tracemalloc.get_traced_memory()[1] - heap0) / 1024 if trace_memory else None
    finally:
        if trace_memory:
            tracemalloc.stop()
    return Round(
        runs=runs,
        calls=runs * calls_per_run,
        usage=meter.usage,
        base_rss_kib=base,
        peak_rss_kib=peak_rss_kib(),
        heap_kib=heap,
        errors=Counter(o for o in outcomes if o is not None),
        retries=RETRIES.count - retried,
    )


def make_driver(
    kind: str, url: str, agent: str, captured: Captured, state: str, pool: int
) -> Driver:
    if kind == "runtime":
        return RuntimeDriver(url, agent, state, pool=pool)
    if kind == "sdk":
        return SdkDriver(url, agent, pool=pool)
    first = captured.weather[0] if agent == "weather-haiku" else captured.long_first
    if kind == "httpx":
        return HttpxDriver(url, first, captured.headers, pool=pool)
    return RawDriver(url, first, captured.headers, pool=pool)


CLIENTS = ("runtime", "sdk", "raw")
LABELS = {
    "runtime": "agent-runtime",
    "sdk": SdkDriver.label,
    "raw": RawDriver.label,
    "httpx": HttpxDriver.label,
}


# -- streaming -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTimes:
    first_byte: float | None
    reasoning: float | None
    text: float | None
    end: float


async def raw_stream(client: httpx2.AsyncClient, body: bytes) -> StreamTimes:
    """One streamed request: when its first body bytes, reasoning and text deltas arrived."""
    first_byte = reasoning = text = None
    start = time.perf_counter()
    completed = False
    async with client.stream("POST", "/responses", content=body) as response:
        async for line in response.aiter_lines():
            now = time.perf_counter() - start
            if first_byte is None:
                first_byte = now
            if reasoning is None and line == "event: response.reasoning_text.delta":
                reasoning = now
            elif text is None and line == "event: response.output_text.delta":
                text = now
            elif line == "event: response.completed":
                completed = True
    if not completed:
        raise WrongAnswer("a raw stream without response.completed")
    return StreamTimes(
        first_byte=first_byte, reasoning=reasoning, text=text, end=time.perf_counter() - start
    )


async def raw_stream_run(client: httpx2.AsyncClient, bodies: Sequence[bytes]) -> StreamTimes:
    """The captured turns of a run one after the other (the tool's time left out)."""
    start = time.perf_counter()
    first_byte = reasoning = text = None
    for body in bodies:
        offset = time.perf_counter() - start
        times = await raw_stream(client, body)
        if first_byte is None and times.first_byte is not None:
            first_byte = offset + times.first_byte
        if reasoning is None and times.reasoning is not None:
            reasoning = offset + times.reasoning
        if text is None and times.text is not None:
            text = offset + times.text
    return StreamTimes(
        first_byte=first_byte, reasoning=reasoning, text=text, end=time.perf_counter() - start
    )


async def runtime_stream(driver: RuntimeDriver, prompt: str) -> StreamTimes:
    reasoning = text = None
    start = time.perf_counter()
    output: object = None
    async for event in driver.stream(prompt):
        now = time.perf_counter() - start
        if reasoning is None and isinstance(event, ReasoningDelta):
            reasoning = now
        elif text is None and isinstance(event, TextDelta):
            text = now
        elif isinstance(event, RunFinished):
            output = event.result.final_output
    check_output(output)
    return StreamTimes(
        first_byte=None, reasoning=reasoning, text=text, end=time.perf_counter() - start
    )


async def sdk_stream(driver: SdkDriver, prompt: str) -> StreamTimes:
    reasoning = text = None
    start = time.perf_counter()
    result = driver.stream(prompt)
    async for event in result.stream_events():
        if event.type != "raw_response_event":
            continue
        now = time.perf_counter() - start
        if reasoning is None and isinstance(event.data, ResponseReasoningTextDeltaEvent):
            reasoning = now
        elif text is None and isinstance(event.data, ResponseTextDeltaEvent):
            text = now
    check_output(result.final_output)
    return StreamTimes(
        first_byte=None, reasoning=reasoning, text=text, end=time.perf_counter() - start
    )
