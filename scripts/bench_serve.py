"""Benchmark `agent-runtime serve`: what the server adds to a run, many streaming clients at once,
CPU per request and memory per run in flight.

    uv run python scripts/bench_serve.py              # full run, about 2 minutes
    uv run python scripts/bench_serve.py --quick      # CI-sized, under a minute
    uv run python scripts/bench_serve.py --quick --check   # exit 1 on errors
    uv run python scripts/bench_serve.py --markdown   # also print the BENCHMARKS.md section
    uv run python scripts/bench_serve.py --only latency   # part 1 only (see below)

The server is the real command (`agent-runtime serve --host 127.0.0.1 --port 0 --no-ui`, access
log on), a process of its own serving scripts/bench_project/agents.yaml (with a `serve:` section
that raises `max_runs_per_key` above the clients' count) against the mock vLLM, also its own
process (`python -m agent_runtime.testing --tool-loop`). This process is the client. CPU times of
the server come from /proc/<pid>/stat, its memory from /proc/<pid>/status (VmRSS).

1. added latency: the weather-haiku agent (2 model calls + 1 tool call, zero mock latency), one
   request at a time: `POST /v1/responses` (plain and streamed to its end), against the same
   run made in this process with `Runtime.run`. The client is a keep-alive connection driven by
   hand (`RawClient`: nothing parsed until the last byte is in), so that the figure is the
   server's; the same requests through httpx2 show what a real client's own work adds. With
   `store: false` nothing is kept; with the default `store: true` the run gets a session
   (SQLite), so it is compared with an in-process run given a new session each time.
2. concurrent streams: N clients at once, each streaming one run to completion over its own
   connection: errors, wall time, time to the first event.
3. memory: N runs held in flight by a mock that waits before its first token; the server's
   RSS then, less its RSS before, per run.

Exit status: 0, or 1 when a request failed or answered wrongly (speed targets never fail it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH_PROJECT = ROOT / "scripts" / "bench_project"
sys.path.insert(0, str(BENCH_PROJECT))

import bench_mock  # noqa: E402
import httpx2  # noqa: E402
from harness import PROMPT, check_output, median, spread  # noqa: E402
from report import Section, Table, Verdict, section_markdown, section_text  # noqa: E402

from agent_runtime import RunEvent, RunFinished, RunResult, Runtime  # noqa: E402
from agent_runtime.server import create_app  # noqa: E402

AGENT = "weather-haiku"
AGENT_RUNTIME = str(Path(sys.executable).parent / "agent-runtime")
PAUSE_S = 0.005  # between two timed requests: what one leaves behind does not delay the next
ADDED_TARGET_S = 0.002  # per request at concurrency 1
BOUNDED_RSS_KIB = 1024  # server RSS per run in flight
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 120.0
WATCHED = frozenset(
    {"response.output_text.delta", "response.completed", "response.failed", "response.incomplete"}
)
PACKAGES = ("openai", "openai-agents", "starlette", "uvicorn", "httptools", "uvloop", "httpx2")
READY = re.compile(r"Serving \d+ agents? at (http://127\.0\.0\.1:\d+)/v1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How much to run."""

    quick: bool
    warmup: int  # runs of each way before the rounds
    rounds: int
    runs: int  # per way per round
    clients: int  # streaming clients at once
    client_rounds: int
    held: int  # runs held in flight for the memory figure
    hold_ms: int  # the mock's wait before its first token, meanwhile

    @classmethod
    def for_run(cls, *, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True,
                warmup=5,
                rounds=2,
                runs=15,
                clients=100,
                client_rounds=1,
                held=100,
                hold_ms=1500,
            )
        return cls(
            quick=False,
            warmup=20,
            rounds=5,
            runs=40,
            clients=500,
            client_rounds=3,
            held=500,
            hold_ms=4000,
        )


# -- the server --------------------------------------------------------------------------------


class ServerProcess:
    """`agent-runtime serve` on 127.0.0.1 (a free port) in its own session, stopped on exit."""

    def __init__(self, mock_url: str, state_dir: str, *, max_runs: int) -> None:
        self.state_dir = Path(tempfile.mkdtemp(prefix="serve-", dir=state_dir))
        config = self.state_dir / "agents.yaml"
        config.write_text(
            (BENCH_PROJECT / "agents.yaml").read_text()
            + f"serve:\n  max_runs_per_key: {max_runs}\n  ui: false\n"
        )
        self.argv = [
            AGENT_RUNTIME,
            "serve",
            "-c",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-ui",
            "--drain-grace",
            "1",
        ]
        self.env = {
            **os.environ,
            "MOCK_URL": mock_url,
            "BENCH_STATE_DIR": str(self.state_dir),
            "PYTHONPATH": str(BENCH_PROJECT),  # the tools (bench_tools) are found there
        }
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> ServerProcess:
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        try:
            self.url = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def _wait_ready(self) -> str:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = READY.search(self.stderr())
            if found:
                return found.group(1)
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self._process.returncode}:\n{self.stderr()[-4000:]}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"the server was not ready in {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._process = None

    def cpu_s(self) -> float:
        return bench_mock.process_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return bench_mock.process_rss_kib(self.pid)


def body(*, stream: bool, store: bool) -> bytes:
    document: dict[str, Any] = {"model": AGENT, "input": PROMPT, "stream": stream}
    if not store:
        document["store"] = False
    return json.dumps(document).encode()


def check_response(raw: bytes) -> None:
    """Raise `WrongAnswer` unless `raw` is a completed response with the mock's answer."""
    document = json.loads(raw)
    texts = [
        part["text"]
        for item in document["output"]
        if item["type"] == "message"
        for part in item["content"]
    ]
    if document["status"] != "completed" or not texts:
        check_output(f"status {document['status']}, no answer")
    check_output(texts[-1])


async def stream_run(client: httpx2.AsyncClient, content: bytes) -> tuple[float, str]:
    """Stream one run to its end: seconds to the first event, and the answer's text."""
    started = time.perf_counter()
    first = 0.0
    text: list[str] = []
    completed = False
    async with client.stream("POST", "/v1/responses", content=content) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code}: {(await answer.aread())[:200]!r}")
        kind = ""
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
                first = first or time.perf_counter() - started
            elif line.startswith("data: ") and kind in WATCHED:
                event = json.loads(line[6:])
                if kind == "response.output_text.delta":
                    text.append(event["delta"])
                elif kind == "response.completed":
                    completed = True
                else:
                    raise RuntimeError(f"the run ended {kind}")
    if not completed:
        raise RuntimeError("the stream ended before response.completed")
    return first, check_output("".join(text))


class RawClient:
    """One keep-alive HTTP/1.1 connection driven by hand: each request in one write, the answer
    read as it comes (by its content-length, or chunk by chunk to the last chunk), nothing
    parsed on the way. What a client costs beyond this is the client's, not the server's."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __aenter__(self) -> RawClient:
        self._connection = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            self._connection[1].close()
            with contextlib.suppress(OSError):
                await self._connection[1].wait_closed()

    def request(self, method: str, path: str, content: bytes = b"") -> bytes:
        """A complete request, to send with `send`."""
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
        if content:
            head += f"content-type: application/json\r\ncontent-length: {len(content)}\r\n"
        return (head + "\r\n").encode() + content

    async def send(self, request: bytes) -> bytes:
        """Send `request` and read its answer to the last byte: the body (chunks joined)."""
        assert self._connection is not None
        reader, writer = self._connection
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = head.lower()
        if b"transfer-encoding: chunked" in fields:
            chunks = []
            while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
                chunks.append((await reader.readexactly(size + 2))[:-2])
            await reader.readexactly(2)
            body = b"".join(chunks)
        else:
            length = int(fields.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        return body


def check_events(raw: bytes) -> None:
    """Raise unless `raw` (a whole Responses stream) ends completed, with the mock's answer."""
    kinds, text = [], []
    for block in raw.decode().split("\n\n"):
        if block.startswith("event: "):
            kind, _, data = block[7:].partition("\ndata: ")
            kinds.append(kind)
            if kind == "response.output_text.delta":
                text.append(json.loads(data)["delta"])
    if not kinds or kinds[-1] != "response.completed":
        raise RuntimeError(f"the stream ended with {kinds[-1:]}")
    check_output("".join(text))


def client_for(url: str, connections: int) -> httpx2.AsyncClient:
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx2.AsyncClient(
        base_url=url,
        limits=limits,
        timeout=REQUEST_TIMEOUT_S,
        trust_env=False,
        headers={"Content-Type": "application/json"},
    )


# -- 1. added latency --------------------------------------------------------------------------


@dataclass(slots=True)
class Way:
    """One way of making a run, timed one at a time."""

    label: str
    call: Callable[[int], Awaitable[None]]
    server: bool  # whose CPU counts: the server's, or (in-process) this process's
    rounds: list[list[float]] = field(default_factory=list)  # wall times, per round
    cpu_s: float = 0.0

    @property
    def walls(self) -> list[float]:
        return [wall for walls in self.rounds for wall in walls]


def row(way: Way, added: str) -> list[str]:
    walls = way.walls
    return [
        way.label,
        str(len(walls)),
        f"{median(walls) * 1000:.2f}",
        f"{min(walls) * 1000:.2f}",
        added,
        f"{way.cpu_s / len(walls) * 1000:.2f}",
        "server" if way.server else "this process",
    ]


async def timed_call(way: Way, server: ServerProcess, number: int) -> float:
    """One call of `way`: its wall time; its CPU (the server's, or this process's) is added to
    the way's."""
    cpu = server.cpu_s() if way.server else time.process_time()
    started = time.perf_counter()
    await way.call(number)
    wall = time.perf_counter() - started
    way.cpu_s += (server.cpu_s() if way.server else time.process_time()) - cpu
    return wall


async def timed_block(way: Way, runs: int, server: ServerProcess, number: int) -> None:
    """`runs` calls of `way` in a row, as one round."""
    way.rounds.append([await timed_call(way, server, number + index) for index in range(runs)])


async def added_latency(
    plan: Plan, mock_url: str, mock_pid: int, state: str, section: Section
) -> None:
    runtime = Runtime.from_yaml(
        BENCH_PROJECT / "agents.yaml",
        environ={"MOCK_URL": mock_url, "BENCH_STATE_DIR": tempfile.mkdtemp(dir=state)},
    )
    with ServerProcess(mock_url, state, max_runs=64) as server:
        async with runtime, client_for(server.url, 4) as client, RawClient(server.url) as raw:

            async def in_process(number: int, *, stream: bool, session: bool) -> None:
                name = f"bench-{number}" if session else None
                if not stream:
                    check_output((await runtime.run(AGENT, PROMPT, session=name)).final_output)
                    return
                final = None
                async with contextlib.aclosing(
                    runtime.stream(AGENT, PROMPT, session=name)
                ) as events:
                    async for event in events:
                        if isinstance(event, RunFinished):
                            final = event.result.final_output
                check_output(final)

            def local(*, stream: bool, session: bool) -> Callable[[int], Awaitable[None]]:
                return functools.partial(in_process, stream=stream, session=session)

            def by_hand(*, stream: bool, store: bool) -> Callable[[int], Awaitable[None]]:
                request = raw.request("POST", "/v1/responses", body(stream=stream, store=store))

                async def call(_: int) -> None:
                    answer = await raw.send(request)
                    check_events(answer) if stream else check_response(answer)

                return call

            def post(*, store: bool) -> Callable[[int], Awaitable[None]]:
                content = body(stream=False, store=store)

                async def call(_: int) -> None:
                    answer = await client.post("/v1/responses", content=content)
                    if answer.status_code != 200:
                        raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
                    check_response(answer.content)

                return call

            def streamed(*, store: bool) -> Callable[[int], Awaitable[None]]:
                content = body(stream=True, store=store)

                async def call(_: int) -> None:
                    await stream_run(client, content)

                return call

            groups = [
                (
                    Way("`Runtime.run`", local(stream=False, session=False), False),
                    Way(
                        "POST /v1/responses, store: false", by_hand(stream=False, store=False), True
                    ),
                    Way("… with httpx2", post(store=False), True),
                ),
                (
                    Way("`Runtime.stream`", local(stream=True, session=False), False),
                    Way("… stream: true, store: false", by_hand(stream=True, store=False), True),
                    Way("… with httpx2", streamed(store=False), True),
                ),
                (
                    Way("`Runtime.run`, a new session", local(stream=False, session=True), False),
                    Way(
                        "POST /v1/responses (store: true)", by_hand(stream=False, store=True), True
                    ),
                    Way("… with httpx2", post(store=True), True),
                ),
                (
                    Way("`Runtime.stream`, a new session", local(stream=True, session=True), False),
                    Way("… stream: true (store: true)", by_hand(stream=True, store=True), True),
                    Way("… with httpx2", streamed(store=True), True),
                ),
            ]
            models = raw.request("GET", "/v1/models")

            async def no_run(_: int) -> None:
                await raw.send(models)

            floor = Way("GET /v1/models (no run)", no_run, True)
            ways = [floor, *(way for group in groups for way in group)]
            number = 0
            for way in ways:
                for _ in range(plan.warmup):
                    number += 1
                    await way.call(number)
            busy, cpu_here, wall = (
                bench_mock.machine_busy_seconds(),
                os.times(),
                time.perf_counter(),
            )
            cpu_server, cpu_mock = server.cpu_s(), bench_mock.process_cpu_seconds(mock_pid)
            for _ in range(plan.rounds):
                gc.collect()
                await timed_block(floor, plan.runs, server, number)
                number += plan.runs
                for group in groups:
                    gc.collect()
                    walls: list[list[float]] = [[] for _ in group]
                    for index in range(plan.runs):
                        # One request each way in turn, the order turning: the requests of a
                        # group meet the same machine (its speed drifts).
                        turn = list(zip(group, walls, strict=True))
                        shift = index % len(turn)
                        for way, times in turn[shift:] + turn[:shift]:
                            number += 1
                            await asyncio.sleep(PAUSE_S)
                            times.append(await timed_call(way, server, number))
                    for way, times in zip(group, walls, strict=True):
                        way.rounds.append(times)
            wall = time.perf_counter() - wall
            ours = sum(os.times()[:2]) - sum(cpu_here[:2])
            ours += (
                server.cpu_s() - cpu_server + bench_mock.process_cpu_seconds(mock_pid) - cpu_mock
            )
            other = max(0.0, bench_mock.machine_busy_seconds() - busy - ours) / wall
    rows = [row(floor, "")]
    adds = []
    for local_way, *served_ways in groups:
        rows.append(row(local_way, ""))
        for served_way in served_ways:
            # Paired by request: each served request against the in-process one next to it.
            added = median(
                [mine - base for mine, base in zip(served_way.walls, local_way.walls, strict=True)]
            )
            rows.append(row(served_way, f"{added * 1000:+.2f}"))
            if served_way is served_ways[0]:
                adds.append(added)
    section.tables.append(
        Table(
            caption="One request at a time (zero mock latency):",
            header=["way", "runs", "median ms", "min ms", "server adds ms", "CPU ms/run", "CPU of"],
            rows=rows,
        )
    )
    section.notes.append(
        "The client: one keep-alive connection driven by hand (each request in one write, the "
        "answer read to its last byte, parsed only after the clock stops), so that what is "
        "measured is the server's; '… with httpx2': the same request through httpx2 (the HTTP "
        "client of the openai package, streams read line by line as `stream_run` does), which "
        "adds the client's own work. GET /v1/models: an HTTP round trip through the server with "
        "no run (uvicorn, the access log and the guard), the floor of what serving adds. "
        "'server adds': the median of the differences between each served request and the "
        "in-process run made next to it (the ways of a group take turns request by request, "
        "the order turning, so that they meet the machine at the same speed: on this machine "
        "it drifts by up to 2x within seconds). Meanwhile everything else on the machine (not "
        f"the server, the mock or this process) kept {other:.0%} of a core busy."
    )
    for name, (plain, with_session) in (("plain", adds[0::2]), ("streamed", adds[1::2])):
        worst = max(plain, with_session)
        section.verdicts.append(
            Verdict(
                target=f"the server adds ≤ {ADDED_TARGET_S * 1000:g} ms to a {name} request at "
                "concurrency 1",
                holds=worst <= ADDED_TARGET_S,
                detail=f"it adds {plain * 1000:.2f} ms (store: false) and "
                f"{with_session * 1000:.2f} ms (store: true).",
            )
        )


# -- 1b. the server's own work, in process ----------------------------------------------------


async def recorded_run(runtime: Runtime) -> list[list[RunEvent]]:
    """One weather-haiku run's events, in the bursts they came in (a gap over 0.2 ms starts a
    new one)."""
    bursts: list[list[RunEvent]] = []
    last = 0.0
    async with contextlib.aclosing(runtime.stream(AGENT, PROMPT)) as events:
        async for event in events:
            now = time.perf_counter()
            if not bursts or now - last > 0.0002:
                bursts.append([])
            bursts[-1].append(event)
            last = now
    return bursts


async def app_work(plan: Plan, mock_url: str, state: str, section: Section) -> None:
    """The app's CPU time per request, driven through ASGI in this process (no socket, no
    uvicorn) with a recorded run replayed in place of the runtime's: the server's own work."""
    runtime = Runtime.from_yaml(
        BENCH_PROJECT / "agents.yaml",
        environ={"MOCK_URL": mock_url, "BENCH_STATE_DIR": tempfile.mkdtemp(dir=state)},
    )
    async with runtime:
        bursts = await recorded_run(runtime)
    last = bursts[-1][-1]
    assert isinstance(last, RunFinished)

    async def replayed_stream(*_: Any, **__: Any) -> AsyncIterator[RunEvent]:
        for index, burst in enumerate(bursts):
            if index:
                await asyncio.sleep(0)  # the next burst comes in another turn of the loop
            for event in burst:
                yield event

    async def replayed_run(*_: Any, **__: Any) -> RunResult:
        return last.result

    runtime.stream = replayed_stream  # type: ignore[method-assign]
    runtime.run = replayed_run  # type: ignore[method-assign]
    app = create_app(runtime)
    written = Counter[str]()

    async def request(content: bytes) -> None:
        done = asyncio.Event()
        unread = [content]

        async def receive() -> dict[str, Any]:
            if unread:
                return {"type": "http.request", "body": unread.pop(), "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            written["messages"] += 1
            written["bytes"] += len(message.get("body", b""))

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/responses",
            "raw_path": b"/v1/responses",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
            "state": {},
        }
        await app(scope, receive, send)  # type: ignore[arg-type]
        done.set()

    ways = {
        "plain, store: false": body(stream=False, store=False),
        "plain, store: true": body(stream=False, store=True),
        "streamed, store: false": body(stream=True, store=False),
        "streamed, store: true": body(stream=True, store=True),
    }
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    shape: dict[str, tuple[float, float]] = {}
    runs = plan.runs * 10
    async with app.router.lifespan_context(app):
        for _ in range(plan.rounds):
            for name, content in ways.items():
                for _ in range(plan.warmup):
                    await request(content)
                written.clear()
                gc.collect()
                started = time.process_time()
                for _ in range(runs):
                    await request(content)
                cpu[name].append((time.process_time() - started) / runs)
                shape[name] = (written["messages"] / runs, written["bytes"] / runs)
    section.tables.append(
        Table(
            caption=(
                "The server's own work per request, in this process (no socket, no uvicorn; a "
                "recorded run replayed in place of the runtime's):"
            ),
            header=["request", "CPU ms/request", "ASGI messages", "bytes"],
            rows=[
                [
                    name,
                    spread(cpu[name], 1000, 3),
                    f"{shape[name][0]:.0f}",
                    f"{shape[name][1]:,.0f}",
                ]
                for name in ways
            ],
        )
    )
    section.notes.append(
        f"Own work: {plan.rounds} round(s) of {runs} requests per way after {plan.warmup} "
        "warm-up ones, median (min-max) over rounds of the CPU time per request: the app "
        "(middleware, body and validation, the gate, the Response object, the stream's events "
        "and their JSON) driven through ASGI with the events of one weather-haiku run "
        f"recorded against the mock ({sum(map(len, bursts))} events in {len(bursts)} bursts, "
        "each burst in a turn of the loop of its own). What the end-to-end figures add to "
        "this is uvicorn's parsing, the socket writes and the wake-ups of both sides."
    )


# -- 2. concurrent streaming clients -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Burst:
    wall_s: float
    first_s: list[float]
    errors: Counter[str]
    server_cpu_s: float
    rss_kib: int


def percentile(values: Sequence[float], q: float) -> float:
    return bench_mock.percentile(values, q)


async def burst(server: ServerProcess, clients: int) -> Burst:
    """`clients` streams at once, each its own connection, each one run to its end."""
    content = body(stream=True, store=True)
    errors: Counter[str] = Counter()
    firsts: list[float] = []
    async with client_for(server.url, clients + 8) as client:
        gate = asyncio.Event()

        async def one() -> None:
            await gate.wait()
            try:
                first, _ = await stream_run(client, content)
            except Exception as exc:
                errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            else:
                firsts.append(first)

        tasks = [asyncio.create_task(one()) for _ in range(clients)]
        await asyncio.sleep(0)  # every task waits at the gate
        cpu = server.cpu_s()
        started = time.perf_counter()
        gate.set()
        async with asyncio.timeout(REQUEST_TIMEOUT_S * 2):
            await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
    return Burst(wall, firsts, errors, server.cpu_s() - cpu, server.rss_kib())


async def concurrent_streams(plan: Plan, mock_url: str, state: str, section: Section) -> None:
    n = plan.clients
    bursts = []
    with ServerProcess(mock_url, state, max_runs=n + 100) as server:
        warm = await burst(server, 10)
        section.errors.update(warm.errors)
        for _ in range(plan.client_rounds):
            bursts.append(await burst(server, n))
            section.errors.update(bursts[-1].errors)
            print(f"  {n} streams: {bursts[-1].wall_s:.2f} s", file=sys.stderr, flush=True)
    errors = sum(b.errors.total() for b in bursts)
    section.tables.append(
        Table(
            caption=f"{n} streaming clients at once ({plan.client_rounds} round(s)):",
            header=[
                "clients",
                "runs",
                "errors",
                "wall s",
                "runs/s",
                "first event p50 ms",
                "first event p99 ms",
                "server CPU ms/run",
                "server RSS MiB after",
            ],
            rows=[
                [
                    str(n),
                    str(len(b.first_s)),
                    str(b.errors.total()),
                    f"{b.wall_s:.2f}",
                    f"{n / b.wall_s:.0f}",
                    f"{percentile(b.first_s, 50) * 1000:.0f}",
                    f"{percentile(b.first_s, 99) * 1000:.0f}",
                    f"{b.server_cpu_s / n * 1000:.2f}",
                    f"{b.rss_kib / 1024:.0f}",
                ]
                for b in bursts
            ],
        )
    )
    section.verdicts.append(
        Verdict(
            target=f"{n} concurrent streaming clients get every run, 0 errors",
            holds=errors == 0,
            detail=f"{errors} error(s) in {n * len(bursts)} streams; wall "
            f"{spread([b.wall_s for b in bursts], 1, 2)} s.",
            timed=False,
        )
    )


# -- 3. memory per run in flight ---------------------------------------------------------------


async def held_runs(plan: Plan, state: str, section: Section) -> None:
    n = plan.held
    options = ["--loop-steps", "1", "--first-token-ms", str(plan.hold_ms)]
    content = body(stream=False, store=True)
    with (
        bench_mock.MockProcess(options) as mock,
        ServerProcess(mock.url, state, max_runs=n + 100) as server,
    ):
        async with client_for(server.url, n + 8) as client:

            async def one() -> str:
                answer = await client.post("/v1/responses", content=content)
                if answer.status_code != 200:
                    return f"HTTP {answer.status_code}"
                check_response(answer.content)
                return ""

            warm = await asyncio.gather(*(one() for _ in range(10)))
            idle = server.rss_kib()
            tasks = [asyncio.create_task(one()) for _ in range(n)]
            peak, in_flight, seen = idle, 0, 0.0
            deadline = time.monotonic() + plan.hold_ms / 1000 * 0.9
            while time.monotonic() < deadline and not all(t.done() for t in tasks):
                metrics = (await client.get("/metrics")).text
                found = re.search(
                    r'agent_runtime_runs_in_flight\{agent="weather-haiku"\} (\S+)', metrics
                )
                in_flight = max(in_flight, int(float(found.group(1))) if found else 0)
                if in_flight >= n and not seen:
                    seen = time.monotonic()
                peak = max(peak, server.rss_kib())
                if seen and time.monotonic() - seen > 0.3:
                    break
                await asyncio.sleep(0.05)
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                results = await asyncio.gather(*tasks)
    problems = Counter(r for r in [*warm, *results] if r)
    section.errors.update(problems)
    per_run = (peak - idle) / max(in_flight, 1)
    section.tables.append(
        Table(
            caption=(
                f"{n} runs held in flight (the mock waits {plan.hold_ms} ms before its first "
                "token):"
            ),
            header=["runs in flight (seen)", "idle RSS MiB", "peak RSS MiB", "KiB per run"],
            rows=[[str(in_flight), f"{idle / 1024:.0f}", f"{peak / 1024:.0f}", f"{per_run:.0f}"]],
        )
    )
    section.notes.append(
        "Memory: the server's RSS after 10 warm-up runs (idle), and its highest RSS sampled "
        "while the held runs were all in flight (`agent_runtime_runs_in_flight` from /metrics); "
        "their difference over the runs in flight is what one run in flight costs (its request, "
        "its task, the Agents SDK's run state, its open request to the model server)."
    )
    section.verdicts.append(
        Verdict(
            target=f"memory per run in flight ≤ {BOUNDED_RSS_KIB} KiB",
            holds=per_run <= BOUNDED_RSS_KIB,
            detail=f"{per_run:.0f} KiB per run ({in_flight} runs in flight).",
            timed=False,
        )
    )
    if in_flight < n:
        section.errors[f"only {in_flight} of {n} runs were in flight together"] += 1


# -- entry point -------------------------------------------------------------------------------


PARTS = ("latency", "app", "streams", "memory")


async def measure(plan: Plan, state: str, parts: Sequence[str] = PARTS) -> Section:
    section = Section(
        title="Serving",
        setup=(
            "The real `agent-runtime serve` (a process of its own, access log on) serving "
            "scripts/bench_project/agents.yaml's weather-haiku agent (2 model calls + 1 tool "
            "call) against the mock vLLM (its own process); this process is the client. One "
            f"request at a time: {plan.rounds} round(s) of {plan.runs} requests per way, after "
            f"{plan.warmup} warm-up runs each, {PAUSE_S * 1000:g} ms apart; each served way is "
            "compared with the same run made in this process (`Runtime.run` or `Runtime.stream` "
            "to its end, with a new session where the server keeps the response), the ways of a "
            "group taking turns request by request. CPU: the server's (from /proc) or, "
            "in-process, this process's, per run. Concurrent clients (httpx2): each streams one "
            "run to `response.completed` on its own connection, all started together; first "
            "event: from sending the request to the first SSE event."
        ),
    )
    with bench_mock.MockProcess(["--loop-steps", "1"]) as mock:
        if "latency" in parts:
            print("[added latency]", file=sys.stderr, flush=True)
            await added_latency(plan, mock.url, mock.pid, state, section)
        if "app" in parts:
            print("[the server's own work]", file=sys.stderr, flush=True)
            await app_work(plan, mock.url, state, section)
        if "streams" in parts:
            print("[concurrent streams]", file=sys.stderr, flush=True)
            await concurrent_streams(plan, mock.url, state, section)
    if "memory" in parts:
        print("[memory]", file=sys.stderr, flush=True)
        await held_runs(plan, state, section)
    return section


def serve_section(*, quick: bool, parts: Sequence[str] = PARTS) -> Section:
    """The section as scripts/bench.py runs it (`parts`: which of PARTS)."""
    with tempfile.TemporaryDirectory(prefix="agent-runtime-bench-serve-") as state:
        return asyncio.run(measure(Plan.for_run(quick=quick), state, parts))


def machine_lines(command: str) -> list[str]:
    return [f"Reproduce: `{command}`", *bench_mock.machine_lines(PACKAGES)]


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark `agent-runtime serve`.")
    parser.add_argument("--quick", action="store_true", help="a CI-sized run")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 on a missed target that is not about speed"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="also print the BENCHMARKS.md section"
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run only this part (repeatable): latency (1), app (the server's own work, "
        "in process), streams (2) or memory (3)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the processes on SIGTERM too
    parts = tuple(args.only or PARTS)
    command = "uv run python scripts/bench_serve.py" + (" --quick" if args.quick else "")
    command += "".join(f" --only {part}" for part in args.only or ())
    print("\n".join(machine_lines(command)) + "\n", flush=True)
    started = time.perf_counter()
    try:
        section = serve_section(quick=args.quick, parts=parts)
    except KeyboardInterrupt:
        print("Interrupted; the server and the mock were stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(section_text(section))
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    if args.markdown:
        print("\n## Serving (`scripts/bench_serve.py`)\n")
        print("\n".join(f"- {line}" for line in machine_lines(command)) + "\n")
        print(section_markdown(section).split("\n", 2)[2])  # without its own title
    for error, count in section.errors.most_common(5):
        print(f"{count} x {error}", file=sys.stderr)
    missed = [v for v in section.verdicts if not v.timed and v.holds is False]
    for verdict in missed if args.check else []:
        print(f"Missed: {verdict.target}: {verdict.detail}", file=sys.stderr)
    return 1 if section.errors or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
