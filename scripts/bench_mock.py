"""Benchmark the mock vLLM server: requests/s and latency at concurrency 1, 64 and 256.

The mock runs as its own process (`python -m agent_runtime.testing --port 0 --tool-loop`); this
process is the load generator. Each level keeps `concurrency` requests in flight over as many
keep-alive connections and sends the bodies the Agents SDK sends: a first turn, and a second
turn that carries reasoning + function_call + function_call_output back, alternately. Two
clients: raw `httpx.AsyncClient`s (non-streaming and streaming Responses, Chat Completions),
and a minimal HTTP/1.1 client on asyncio streams (non-streaming only) that costs so little CPU
that the mock, not the client, becomes the limit.

Besides client-observed latency it reports the CPU time each process used (`/proc/<pid>/stat`
for the mock, `time.process_time()` here), so a reader can tell which side was the limit, and,
at concurrency 1, the mock's own time per request several ways: through the minimal client,
by the mock's CPU time per request, and for its ASGI application alone.

    uv run python scripts/bench_mock.py              # full run, about a minute
    uv run python scripts/bench_mock.py --quick      # under ten seconds, for CI
    uv run python scripts/bench_mock.py --markdown   # also print a section for BENCHMARKS.md

Exit status: 0, or 1 when a request failed or got a wrong answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import selectors
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import httpx

MODEL = "openai/gpt-oss-20b"
INSTRUCTIONS = "You are a helpful weather assistant. Use the tool."
QUESTION = "What's the weather in Tokyo?"
REASONING = "The user wants the weather; call the tool. (step 1)"
TOOL_OUTPUT = "Sunny in Tokyo, 22 C"
PARAMETERS = {
    "properties": {"city": {"title": "City", "type": "string"}},
    "required": ["city"],
    "title": "get_weather_args",
    "type": "object",
    "additionalProperties": False,
}
# What the Agents SDK 0.24 (`OpenAIResponsesModel`) and the openai client send, in part.
HEADERS = {
    "accept": "application/json",
    "content-type": "application/json",
    "authorization": "Bearer EMPTY",
    "user-agent": "Agents/Python 0.24.0",
    "x-stainless-lang": "python",
    "x-stainless-async": "async:asyncio",
}
LEVELS = (1, 64, 256)
TARGET_MS = 2.0
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1

Turn = Literal[1, 2]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One kind of request: an endpoint, streaming or not, and its two bodies."""

    name: str
    path: str
    stream: bool
    bodies: tuple[bytes, bytes]
    check: Callable[[Turn, bytes], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """How long one measurement may run: whichever of the two ends first."""

    requests: int
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The budgets of a run."""

    single: Budget  # concurrency 1
    concurrent: Budget  # every other level
    warmup_rounds: int  # unmeasured requests per connection first
    asgi_requests: int

    @classmethod
    def for_run(cls, *, quick: bool) -> Plan:
        if quick:
            return cls(
                single=Budget(requests=200, seconds=0.2),
                concurrent=Budget(requests=600, seconds=0.2),
                warmup_rounds=1,
                asgi_requests=200,
            )
        return cls(
            single=Budget(requests=3000, seconds=3),
            concurrent=Budget(requests=20000, seconds=4),
            warmup_rounds=2,
            asgi_requests=3000,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One request as the client saw it; `error` is None when the answer was right."""

    latency_ns: int
    first_byte_ns: int | None
    error: str | None


Client = Literal["httpx", "raw"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelResult:
    """One scenario at one concurrency through one kind of client."""

    scenario: str
    client: Client
    concurrency: int
    wall_s: float
    latencies_ms: list[float]
    first_bytes_ms: list[float]
    errors: Counter[str]
    mock_cpu_s: float
    client_cpu_s: float
    machine_busy_s: float

    @property
    def other_cpu_s(self) -> float:
        """CPU time of everything else on the machine meanwhile (other processes, the kernel)."""
        return max(0.0, self.machine_busy_s - self.mock_cpu_s - self.client_cpu_s)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors.total()

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0

    @property
    def mock_ms_per_request(self) -> float:
        return 1000 * self.mock_cpu_s / max(self.requests, 1)

    @property
    def client_ms_per_request(self) -> float:
        return 1000 * self.client_cpu_s / max(self.requests, 1)


@dataclass(slots=True, kw_only=True)
class Report:
    """Everything measured in one run."""

    command: str
    shared_pool: bool
    warmup_rounds: int
    levels: list[LevelResult] = field(default_factory=list)
    first: dict[str, LevelResult] = field(default_factory=dict)  # raw, concurrency 1, at start
    last: dict[str, LevelResult] = field(default_factory=dict)  # the same at the end
    asgi_ms: dict[str, list[float]] = field(default_factory=dict)
    rss_kib: tuple[int, int] = (0, 0)
    sent: int = 0
    sent_before_last: int = 0
    mock_exit_code: int | None = None

    @property
    def results(self) -> list[LevelResult]:
        return [*self.first.values(), *self.levels, *self.last.values()]


# -- request bodies ------------------------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def responses_bodies(*, stream: bool) -> tuple[bytes, bytes]:
    """A first and a second turn of an Agents SDK run, as `/v1/responses` bodies."""
    tool = {
        "name": "get_weather",
        "parameters": PARAMETERS,
        "strict": True,
        "type": "function",
        "description": "Get the current weather for a city.",
    }
    common: dict[str, Any] = {
        "model": MODEL,
        "include": [],
        "instructions": INSTRUCTIONS,
        "reasoning": {"effort": "low"},
        "tools": [tool],
    }
    if stream:
        common["stream"] = True
    user = {"content": QUESTION, "role": "user"}
    history = [
        user,
        {
            "id": "rs_f593c01556c3ea75",
            "summary": [],
            "type": "reasoning",
            "content": [{"text": REASONING, "type": "reasoning_text"}],
            "encrypted_content": None,
        },
        {
            "arguments": '{"city":"Tokyo"}',
            "call_id": "call_c7c910c2fc77b1f7",
            "name": "get_weather",
            "type": "function_call",
            "id": "fc_c7c910c2fc77b1f7",
        },
        {"call_id": "call_c7c910c2fc77b1f7", "output": TOOL_OUTPUT, "type": "function_call_output"},
    ]
    return _dumps({**common, "input": [user]}), _dumps({**common, "input": history})


def chat_bodies() -> tuple[bytes, bytes]:
    """The same two turns as `/v1/chat/completions` bodies (`OpenAIChatCompletionsModel`)."""
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": PARAMETERS,
            "strict": True,
        },
    }
    first = [{"content": INSTRUCTIONS, "role": "system"}, {"role": "user", "content": QUESTION}]
    call_id = "chatcmpl-tool-19466a1f4ab6ff75"
    second = [
        *first,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
                }
            ],
            "reasoning": REASONING,
        },
        {"role": "tool", "tool_call_id": call_id, "content": TOOL_OUTPUT},
    ]
    common = {"model": MODEL, "reasoning_effort": "low", "tools": [tool]}
    return _dumps({**common, "messages": first}), _dumps({**common, "messages": second})


# -- answer checks: the tool loop calls the tool on turn 1 and answers on turn 2 ----------------


def check_response(turn: Turn, body: bytes) -> str | None:
    payload = json.loads(body)
    types = [item["type"] for item in payload["output"]]
    want = "function_call" if turn == 1 else "message"
    if payload["status"] != "completed" or want not in types:
        return f"turn {turn}: status {payload['status']!r}, output {types!r}"
    return None


def check_response_stream(turn: Turn, body: bytes) -> str | None:
    want = b"response.function_call_arguments.done" if turn == 1 else b"response.output_text.done"
    if b"event: response.completed\n" not in body or want not in body:
        return f"turn {turn}: a stream without {want.decode()} or response.completed"
    return None


def check_chat(turn: Turn, body: bytes) -> str | None:
    choice = json.loads(body)["choices"][0]
    message = choice["message"]
    if not (message["tool_calls"] if turn == 1 else message["content"]):
        return f"turn {turn}: finish_reason {choice['finish_reason']!r}"
    return None


def scenarios() -> list[Scenario]:
    return [
        Scenario(
            name="responses",
            path="/responses",
            stream=False,
            bodies=responses_bodies(stream=False),
            check=check_response,
        ),
        Scenario(
            name="responses stream",
            path="/responses",
            stream=True,
            bodies=responses_bodies(stream=True),
            check=check_response_stream,
        ),
        Scenario(
            name="chat",
            path="/chat/completions",
            stream=False,
            bodies=chat_bodies(),
            check=check_chat,
        ),
    ]


# -- the mock process ----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class MockProcess:
    """`python -m agent_runtime.testing --tool-loop` in its own session, stopped on exit."""

    def __init__(self, options: Sequence[str]) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "agent_runtime.testing",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--tool-loop",
            "--seed",
            "0",
            *options,
        ]
        self.url = ""
        self.exit_code: int | None = None
        self.stderr = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_file: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the mock is not running")
        return self._process.pid

    def __enter__(self) -> MockProcess:
        self._stderr_file = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr_file,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the mock ourselves
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            self.url = self._read_url()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _read_url(self) -> str:
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        data = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"the mock printed no URL in {STARTUP_TIMEOUT_S:.0f} s")
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    process.wait(timeout=STOP_TIMEOUT_S)
                    raise RuntimeError(
                        f"the mock exited with {process.returncode} before printing its URL:\n"
                        f"{self._read_stderr()}"
                    )
                data += chunk
        url = data.split(b"\n", 1)[0].decode().strip()
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError(f"the mock printed {url!r}, not a loopback URL")
        return url

    def _read_stderr(self) -> str:
        if self._stderr_file is None:
            return ""
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM (the mock shuts uvicorn down gracefully), then SIGKILL if it hangs."""
        process = self._process
        if process is not None:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.exit_code = process.returncode
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr_file is not None:
            self.stderr = self._read_stderr()
            self._stderr_file.close()
            self._stderr_file = None
        self._process = None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of all threads of `pid`, from /proc (resolution 1/CLK_TCK)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 on; the name may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy (stolen time included), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the load generators -----------------------------------------------------------------------

Send = Callable[[int, Turn], Awaitable[Sample]]  # (worker, turn) -> sample


async def send_httpx(client: httpx.AsyncClient, scenario: Scenario, turn: Turn) -> Sample:
    body = scenario.bodies[turn - 1]
    first_byte: int | None = None
    start = time.perf_counter_ns()
    try:
        if scenario.stream:
            chunks = []
            async with client.stream("POST", scenario.path, content=body) as response:
                async for chunk in response.aiter_raw():
                    if first_byte is None:
                        first_byte = time.perf_counter_ns() - start
                    chunks.append(chunk)
            data = b"".join(chunks)
        else:
            response = await client.post(scenario.path, content=body)
            data = response.content
        latency = time.perf_counter_ns() - start
    except httpx.HTTPError as exc:
        return Sample(latency_ns=0, first_byte_ns=None, error=type(exc).__name__)
    return judge(scenario, turn, latency, first_byte, response.status_code, data)


def judge(
    scenario: Scenario, turn: Turn, latency: int, first_byte: int | None, status: int, data: bytes
) -> Sample:
    if status != 200:
        error = f"HTTP {status}: {data[:200].decode(errors='replace')}"
        return Sample(latency_ns=latency, first_byte_ns=None, error=error)
    try:
        problem = scenario.check(turn, data)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        problem = f"unexpected answer: {type(exc).__name__}: {exc}"
    return Sample(latency_ns=latency, first_byte_ns=first_byte, error=problem)


def raw_requests(url: str, scenario: Scenario) -> tuple[bytes, bytes]:
    """The two turns as complete HTTP/1.1 requests, each sent in one write."""
    parts = urlsplit(url)
    fields = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    first, second = (
        f"POST {parts.path}{scenario.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n{fields}"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
        for body in scenario.bodies
    )
    return first, second


async def send_raw(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    scenario: Scenario,
    request: bytes,
    turn: Turn,
) -> Sample:
    """One request over a keep-alive connection; answers need a content-length (no streams)."""
    reader, writer = connection
    start = time.perf_counter_ns()
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        lengths = [int(x.split(b":")[1]) for x in lines if x.lower().startswith(b"content-len")]
        if not lengths:
            return Sample(latency_ns=0, first_byte_ns=None, error="no content-length")
        data = await reader.readexactly(lengths[0])
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return Sample(latency_ns=0, first_byte_ns=None, error=type(exc).__name__)
    latency = time.perf_counter_ns() - start
    return judge(scenario, turn, latency, None, status, data)


async def drive(send: Send, concurrency: int, budget: Budget) -> list[Sample]:
    """`concurrency` workers send requests back to back until the budget is spent."""
    samples: list[Sample] = []
    issued = 0
    deadline = time.perf_counter() + budget.seconds

    async def worker(index: int) -> None:
        nonlocal issued
        while issued < budget.requests and time.perf_counter() < deadline:
            turn: Turn = 1 if issued % 2 == 0 else 2
            issued += 1
            samples.append(await send(index, turn))

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return samples


async def measure(
    mock: MockProcess,
    scenario: Scenario,
    client: Client,
    send: Send,
    concurrency: int,
    budget: Budget,
    report: Report,
) -> LevelResult:
    """Warm up (every connection opens), then measure: latencies and both sides' CPU time."""
    warmup = Budget(requests=max(report.warmup_rounds * concurrency, 20), seconds=2)
    report.sent += len(await drive(send, concurrency, warmup))
    busy = machine_busy_seconds()
    mock_cpu = process_cpu_seconds(mock.pid)
    client_cpu = time.process_time()
    start = time.perf_counter()
    samples = await drive(send, concurrency, budget)
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    mock_cpu = process_cpu_seconds(mock.pid) - mock_cpu
    busy = machine_busy_seconds() - busy
    report.sent += len(samples)
    good = [s for s in samples if s.error is None]
    result = LevelResult(
        scenario=scenario.name,
        client=client,
        concurrency=concurrency,
        wall_s=wall,
        latencies_ms=[s.latency_ns / 1e6 for s in good],
        first_bytes_ms=[s.first_byte_ns / 1e6 for s in good if s.first_byte_ns is not None],
        errors=Counter(s.error for s in samples if s.error is not None),
        mock_cpu_s=mock_cpu,
        client_cpu_s=client_cpu,
        machine_busy_s=busy,
    )
    print(f"  {format_row(result)}", file=sys.stderr, flush=True)
    return result


async def measure_httpx(
    mock: MockProcess, scenario: Scenario, concurrency: int, budget: Budget, report: Report
) -> LevelResult:
    # One client per connection by default: httpcore's pool scans every connection for every
    # queued request, which with 64+ connections in one pool costs the client more CPU than the
    # mock spends answering (see BENCHMARKS.md); --shared-pool measures that setup.
    pools, size = (1, concurrency) if report.shared_pool else (concurrency, 1)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    # Plain HTTP: share one unused TLS context instead of loading certifi's bundle per client.
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=mock.url,
                    headers=HEADERS,
                    limits=limits,
                    verify=tls,
                    timeout=REQUEST_TIMEOUT_S,
                    trust_env=False,
                )
            )
            for _ in range(pools)
        ]

        def send(worker: int, turn: Turn) -> Awaitable[Sample]:
            return send_httpx(clients[worker % pools], scenario, turn)

        return await measure(mock, scenario, "httpx", send, concurrency, budget, report)


async def measure_raw(
    mock: MockProcess, scenario: Scenario, concurrency: int, budget: Budget, report: Report
) -> LevelResult:
    """The same through plain asyncio streams: about 0.1 ms of client CPU per request."""
    parts = urlsplit(mock.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = raw_requests(mock.url, scenario)
    connections = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(concurrency))
    )
    try:

        def send(worker: int, turn: Turn) -> Awaitable[Sample]:
            return send_raw(connections[worker], scenario, requests[turn - 1], turn)

        return await measure(mock, scenario, "raw", send, concurrency, budget, report)
    finally:
        for _, writer in connections:
            writer.close()


# -- the ASGI application alone, in this process -----------------------------------------------


async def asgi_times(scenario: Scenario, count: int) -> list[float]:
    """Milliseconds `MockVLLM.asgi` takes per request, called directly: no HTTP, no sockets."""
    from agent_runtime.testing import MockVLLM, ToolLoop

    mock = MockVLLM(default=ToolLoop(), seed=0)
    headers = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
    never = asyncio.Event()
    times: list[float] = []
    warmup = count // 10
    for i in range(warmup + count):
        body = scenario.bodies[i % 2]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1" + scenario.path,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive(messages: list[dict[str, Any]] = messages) -> dict[str, Any]:
            if messages:
                return messages.pop()
            await never.wait()  # as uvicorn: no disconnect while the client waits
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            return None

        start = time.perf_counter_ns()
        await mock.asgi(scope, receive, send)
        elapsed = time.perf_counter_ns() - start
        if mock.requests[-1].status != 200:
            raise RuntimeError(f"in process, {scenario.name} answered {mock.requests[-1].status}")
        if i >= warmup:
            times.append(elapsed / 1e6)
    return times


# -- the run -------------------------------------------------------------------------------------


async def run_all(mock: MockProcess, report: Report, plan: Plan, levels: Sequence[int]) -> None:
    plain = [s for s in scenarios() if not s.stream]
    print(f"  {header_text()}", file=sys.stderr, flush=True)
    for scenario in plain:
        report.first[scenario.name] = await measure_raw(mock, scenario, 1, plan.single, report)
    for scenario in scenarios():
        for concurrency in levels:
            budget = plan.single if concurrency == 1 else plan.concurrent
            report.levels.append(await measure_httpx(mock, scenario, concurrency, budget, report))
    for scenario in plain:
        for concurrency in levels:
            if concurrency > 1:
                report.levels.append(
                    await measure_raw(mock, scenario, concurrency, plan.concurrent, report)
                )
    report.sent_before_last = report.sent
    for scenario in plain:
        report.last[scenario.name] = await measure_raw(mock, scenario, 1, plan.single, report)
    for scenario in plain:
        report.asgi_ms[scenario.name] = await asgi_times(scenario, plan.asgi_requests)


def run(mock: MockProcess, report: Report, plan: Plan, levels: Sequence[int]) -> None:
    start = process_rss_kib(mock.pid)
    asyncio.run(run_all(mock, report, plan, levels))
    report.rss_kib = (start, process_rss_kib(mock.pid))


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, -(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return ordered[int(rank) - 1]


# -- output --------------------------------------------------------------------------------------

COLUMNS = (
    ("scenario", 16),
    ("client", 6),
    ("conc", 4),
    ("requests", 8),
    ("errors", 6),
    ("req/s", 6),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("TTFB p50", 8),
    ("TTFB p99", 8),
    ("mock CPU", 8),
    ("mock ms/req", 11),
    ("client CPU", 10),
    ("client ms/req", 13),
    ("other CPU", 9),
)


def row_cells(result: LevelResult) -> list[str]:
    first = result.first_bytes_ms
    return [
        result.scenario,
        result.client,
        str(result.concurrency),
        str(result.requests),
        str(result.errors.total()),
        f"{result.rps:.0f}",
        f"{percentile(result.latencies_ms, 50):.2f}",
        f"{percentile(result.latencies_ms, 99):.2f}",
        f"{percentile(first, 50):.2f}" if first else "-",
        f"{percentile(first, 99):.2f}" if first else "-",
        f"{100 * result.mock_cpu_s / result.wall_s:.0f} %",
        f"{result.mock_ms_per_request:.3f}",
        f"{100 * result.client_cpu_s / result.wall_s:.0f} %",
        f"{result.client_ms_per_request:.3f}",
        f"{100 * result.other_cpu_s / result.wall_s:.0f} %",
    ]


def _line(cells: Sequence[str]) -> str:
    widths = [width for _, width in COLUMNS]
    return "  ".join(
        cell.ljust(width) if i < 2 else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


def header_text() -> str:
    return _line([name for name, _ in COLUMNS])


def format_row(result: LevelResult) -> str:
    return _line(row_cells(result))


def _p50_p99(values: Sequence[float]) -> str:
    return f"{percentile(values, 50):.3f} / {percentile(values, 99):.3f}"


OWN_TIME_HEADER = (
    "scenario",
    "raw p50 / p99 ms, at start",
    "mock CPU ms/req, at start",
    "raw p50 / p99 ms, at end",
    "mock CPU ms/req, at end",
    "ASGI app alone p50 / p99 ms",
    "httpx p50 / p99 ms",
)


def own_time_rows(report: Report) -> list[list[str]]:
    """The mock's own time per non-streaming request at concurrency 1, several ways."""
    rows = []
    for name, first in report.first.items():
        last = report.last.get(name)
        through_httpx = next(
            (r for r in report.levels if r.scenario == name and r.concurrency == 1), None
        )
        rows.append(
            [
                name,
                _p50_p99(first.latencies_ms),
                f"{first.mock_ms_per_request:.3f}",
                _p50_p99(last.latencies_ms) if last else "-",
                f"{last.mock_ms_per_request:.3f}" if last else "-",
                _p50_p99(report.asgi_ms.get(name, [])),
                _p50_p99(through_httpx.latencies_ms) if through_httpx else "-",
            ]
        )
    return rows


def verdict(report: Report) -> str:
    medians = [
        percentile(r.latencies_ms, 50) for r in [*report.first.values(), *report.last.values()]
    ]
    if not medians:
        return "not measured"
    word = "holds" if max(medians) < TARGET_MS else "FAILS"
    return f"{word}: the slowest raw median at concurrency 1 is {max(medians):.3f} ms"


NOTES = (
    "Latency: client-observed, from sending the request to its last byte; TTFB: to the first "
    "body chunk of a stream. req/s: successful requests over wall time. CPU %: CPU time over "
    "wall time, 100 % being one core; both processes share the machine's cores and the mock "
    "serves on one event-loop thread, so either side near 100 % is the limit. ms/req: that "
    "process's CPU time per request. other CPU: the rest of the machine's busy time (other "
    "processes, interrupts, stolen time), to spot a disturbed level. Each level keeps `conc` "
    "requests in flight over `conc` keep-alive connections, alternating the first- and "
    "second-turn bodies, after a warm-up. Client `httpx`: one `httpx.AsyncClient` per "
    "connection; `raw`: asyncio streams and a minimal HTTP/1.1 exchange, each request in one "
    "write (non-streaming only), to load the mock with little client cost."
)
OWN_TIME_NOTES = (
    "raw: the `raw` client at concurrency 1, once before the other levels and once after them "
    "(the mock then holds every earlier request in its log); its median is the mock's own time "
    "plus loopback and some tens of microseconds of client. mock CPU: the mock process's user + "
    "system CPU per request, a mean that includes uvicorn, HTTP parsing and the kernel's socket "
    "work. ASGI app alone: `MockVLLM.asgi` called in this process, no HTTP. httpx: the `httpx` "
    "client at concurrency 1, whose own CPU per request is in the table above."
)


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def machine_lines(
    packages: Sequence[str] = ("uvicorn", "httptools", "uvloop", "httpx", "h11"),
) -> list[str]:
    """Date and commit, the machine, Python and the versions of `packages`."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    installed = ", ".join(f"{name} {version(name)}" for name in packages)
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return [
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; commit `{commit}`",
        f"Machine: {len(os.sched_getaffinity(0))} CPUs (`nproc`), {model}, "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; {installed}",
    ]


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", *["---:"] * (len(header) - 1)]) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def memory_line(report: Report) -> str:
    start, end = report.rss_kib
    return (
        f"Mock resident memory: {start / 1024:.0f} MiB after start, {end / 1024:.0f} MiB after "
        f"{report.sent} requests ({report.sent_before_last} before the `at end` row)."
    )


def markdown(report: Report) -> str:
    return "\n".join(
        [
            "## Mock vLLM server (`scripts/bench_mock.py`)",
            "",
            f"Reproduce: `{report.command}`",
            "",
            *(f"- {line}" for line in machine_lines()),
            "",
            *_markdown_table([name for name, _ in COLUMNS], [row_cells(r) for r in report.levels]),
            "",
            NOTES,
            "",
            "The mock's own time per non-streaming request at concurrency 1:",
            "",
            *_markdown_table(OWN_TIME_HEADER, own_time_rows(report)),
            "",
            OWN_TIME_NOTES,
            "",
            f"Target (median under {TARGET_MS:g} ms): {verdict(report)}. {memory_line(report)}",
        ]
    )


def text(report: Report) -> str:
    return "\n".join(
        [
            header_text(),
            *(format_row(r) for r in report.levels),
            "",
            textwrap.fill(NOTES, width=100),
            "",
            "The mock's own time per non-streaming request at concurrency 1:",
            *_columns([OWN_TIME_HEADER, *own_time_rows(report)]),
            "",
            textwrap.fill(OWN_TIME_NOTES, width=100),
            "",
            f"Target (median under {TARGET_MS:g} ms): {verdict(report)}.",
            memory_line(report),
            f"Mock exit code: {report.mock_exit_code}.",
        ]
    )


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the mock vLLM server (see BENCHMARKS.md)."
    )
    parser.add_argument("--quick", action="store_true", help="a CI-sized run of a few seconds")
    parser.add_argument(
        "--markdown", action="store_true", help="also print a section for BENCHMARKS.md"
    )
    parser.add_argument(
        "--levels",
        default=",".join(map(str, LEVELS)),
        help="comma-separated concurrency levels (default: %(default)s)",
    )
    parser.add_argument(
        "--shared-pool",
        action="store_true",
        help="one httpx.AsyncClient whose pool holds every connection, not one client each",
    )
    parser.add_argument(
        "--mock-args",
        default="",
        help="more options for the mock, as one argument: --mock-args='--first-token-ms 5'",
    )
    return parser.parse_args(argv)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        levels = [int(level) for level in args.levels.split(",")]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        print(
            f"Error: --levels {args.levels!r}: give positive integers like 1,64,256.",
            file=sys.stderr,
        )
        return 2
    options = ["--quick"] if args.quick else []
    if args.levels != ",".join(map(str, LEVELS)):
        options += ["--levels", args.levels]
    if args.shared_pool:
        options.append("--shared-pool")
    if args.mock_args:
        options += ["--mock-args", shlex.quote(args.mock_args)]
    plan = Plan.for_run(quick=args.quick)
    report = Report(
        command=" ".join(["uv run python scripts/bench_mock.py", *options]),
        shared_pool=args.shared_pool,
        warmup_rounds=plan.warmup_rounds,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # stop the mock on SIGTERM too, as on Ctrl-C
    mock = MockProcess(shlex.split(args.mock_args))
    try:
        with mock:
            print(f"mock at {mock.url} (pid {mock.pid})", file=sys.stderr, flush=True)
            run(mock, report, plan, levels)
    except KeyboardInterrupt:
        print("Interrupted; the mock was stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        if mock.stderr and mock.stderr.strip() not in str(exc):
            print(f"The mock's stderr:\n{mock.stderr[-4000:]}", file=sys.stderr)
        return 1
    report.mock_exit_code = mock.exit_code
    print(text(report))
    if args.markdown:
        print()
        print(markdown(report))
    if any(r.errors for r in report.results):
        for result in report.results:
            for error, count in result.errors.most_common(3):
                print(
                    f"{result.scenario} ({result.client}, c={result.concurrency}): "
                    f"{count} x {error}",
                    file=sys.stderr,
                )
        if mock.stderr:
            print(f"The mock's stderr:\n{mock.stderr[-4000:]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
