"""Benchmark agent-runtime against the bare Agents SDK and raw HTTP, on the mock vLLM server.

One command reproduces every figure of the "Runtime" section of BENCHMARKS.md:

    uv run python scripts/bench.py              # full run, about 9 minutes
    uv run python scripts/bench.py --quick      # CI-sized, about a minute
    uv run python scripts/bench.py --quick --check   # CI: exit 1 on errors or a missed target
                                                     # that is not about speed
    uv run python scripts/bench.py --markdown   # also print the BENCHMARKS.md section
    uv run python scripts/bench.py --only overhead,long-loops
    uv run --with pyinstrument python scripts/bench.py --profile long-loop   # hot paths

Sections:

1. overhead: sequential runs of a weather-haiku agent (2 model calls + 1 tool call, zero mock
   latency) through agent-runtime, the same agent built by hand on the bare Agents SDK, and a
   hand-written loop on `openai.AsyncOpenAI`.
2. concurrency: 1-1,000 concurrent runs with 100 ms per model call: wall time against the
   latency-bound ideal, calls/s, CPU per call, peak RSS; agent-runtime, bare SDK, raw httpx2.
3. streaming: time to the first reasoning and answer tokens through `Runtime.stream()` against
   the mock's own SSE timing.
4. startup: the CLI's start-up (scripts/bench_startup.py).
5. prefix: in harmony mode, how much of each turn's prompt the next turn's prompt starts with.
6. long-loops: runs of 1-100 tool steps with 1 KB tool outputs: client time per turn.
7. long-concurrency: 100 concurrent 20-step runs: runs/s and CPU per run.

The mock server runs as its own process (`python -m agent_runtime.testing --tool-loop`) for every
measurement of the client side, so this process's CPU time (`time.process_time()`) is the client's
and the mock's comes from /proc: the two share the machine's two cores, and either one near 100 %
of a core is the limit. Everything listens and connects on 127.0.0.1 only.

The clients, the HTTP timing and the meters are in bench_project/harness.py, the tables and
verdicts in bench_project/report.py, the agents and their tools in bench_project/agents.yaml.

Exit status: 0, or 1 when a run failed or answered wrongly (targets missed do not fail it).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# scripts/ is sys.path[0] when this file runs as a script (bench_mock, bench_startup); the
# benchmark's project folder holds its agents.yaml, tools and the harness.
sys.path.insert(0, str(ROOT / "scripts" / "bench_project"))

import bench_mock  # noqa: E402
import bench_startup  # noqa: E402
import bench_tools  # noqa: E402
import httpx2  # noqa: E402
from harness import (  # noqa: E402
    CLIENTS,
    LABELS,
    LONG_PROMPT,
    PROMPT,
    REQUEST_TIMEOUT_S,
    Captured,
    Driver,
    Meter,
    OpenAILoopDriver,
    Round,
    RunRecord,
    RuntimeDriver,
    SdkDriver,
    StreamTimes,
    Usage,
    WrongAnswer,
    capture,
    check_output,
    concurrent_round,
    make_driver,
    median,
    ratio,
    raw_stream_run,
    runtime_stream,
    sdk_stream,
    spread,
)
from report import (  # noqa: E402
    Section,
    Table,
    Verdict,
    machine_lines,
    section_markdown,
    section_text,
    top_frames,
)

HARMONY_DATE = "2026-01-01"
SECTIONS = (
    "overhead",
    "concurrency",
    "streaming",
    "startup",
    "prefix",
    "long-loops",
    "long-concurrency",
)
# Targets.
OVERHEAD_TARGET = 1.10  # agent-runtime / bare SDK, median time per run
CONCURRENCY_CPU_TARGET = 2.0  # agent-runtime / raw httpx2, CPU per model call at concurrency 100
BOUNDED_RSS_KIB = 1024  # peak RSS growth per in-flight run at concurrency 1,000
BIG_LEVEL = 100  # above it, one round (no warm-up, no tracemalloc): minutes otherwise
LONG_PATH_TARGET = 2.0  # agent-runtime / raw, request path at 40 prior steps
FLAT_TURN_TARGET = 2.0  # agent-runtime's turn time at 100 prior steps / at 10 prior steps


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How much of each section to run."""

    quick: bool
    overhead_warmup: int
    overhead_rounds: int
    overhead_runs: int  # per client per round
    levels: tuple[int, ...]
    concurrency_rounds: int
    stream_runs: int
    startup_runs: int
    loop_steps: tuple[int, ...]
    loop_runs: int
    long_concurrency: int
    long_steps: int
    long_rounds: int

    @classmethod
    def for_run(cls, *, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True,
                overhead_warmup=2,
                overhead_rounds=1,
                overhead_runs=10,
                levels=(1, 10, 50),
                concurrency_rounds=1,
                stream_runs=1,
                startup_runs=1,
                loop_steps=(1, 10),
                loop_runs=1,
                long_concurrency=10,
                long_steps=5,
                long_rounds=1,
            )
        return cls(
            quick=False,
            overhead_warmup=20,
            overhead_rounds=5,
            overhead_runs=60,
            levels=(1, 10, 100, 1000),
            concurrency_rounds=3,
            stream_runs=10,
            startup_runs=10,
            loop_steps=(1, 10, 40, 100),
            loop_runs=3,
            long_concurrency=100,
            long_steps=20,
            long_rounds=2,
        )


# -- 1. overhead per run -------------------------------------------------------------------------


async def overhead(plan: Plan, captured: Captured, state: str) -> Section:
    section = Section(
        title="1. Overhead per run",
        setup=(
            "The weather-haiku agent (2 model calls + 1 tool call) run after run, one at a "
            "time, against the mock with zero latency. total: wall time per run; HTTP: its "
            "time inside the HTTP transport (loopback and the mock's own time); client: the "
            "rest. CPU: this process's CPU time per run. Rounds of "
            f"{plan.overhead_runs} runs per client alternate between the clients "
            f"({plan.overhead_rounds} rounds, after {plan.overhead_warmup} warm-up runs each)."
        ),
    )
    with bench_mock.MockProcess(["--loop-steps", "1"]) as mock:
        drivers: list[Driver] = [
            RuntimeDriver(mock.url, "weather-haiku", state),
            RuntimeDriver(mock.url, "weather-haiku", state, tracing=False),
            SdkDriver(mock.url, "weather-haiku"),
            OpenAILoopDriver(mock.url, captured.weather[0]),
        ]
        records: dict[str, list[RunRecord]] = {d.label: [] for d in drivers}
        usages: dict[str, list[Usage]] = {d.label: [] for d in drivers}
        try:
            for driver in drivers:
                for _ in range(plan.overhead_warmup):
                    await driver.measure(PROMPT)
            for _ in range(plan.overhead_rounds):
                for driver in drivers:
                    gc.collect()
                    with Meter(mock) as meter:
                        for _ in range(plan.overhead_runs):
                            records[driver.label].append(await driver.measure(PROMPT))
                    usages[driver.label].append(meter.usage)
        finally:
            for driver in drivers:
                await driver.aclose()

    def per_run(label: str, pick: Callable[[Usage], float]) -> float:
        return median([pick(u) / plan.overhead_runs for u in usages[label]])

    sdk = median([r.wall_s for r in records[SdkDriver.label]])
    sdk_client = median([r.client_s for r in records[SdkDriver.label]])
    sdk_cpu = per_run(SdkDriver.label, lambda u: u.cpu_s)
    rows = []
    for label, runs in records.items():
        walls = [r.wall_s for r in runs]
        client = median([r.client_s for r in runs])
        cpu = per_run(label, lambda u: u.cpu_s)
        rows.append(
            [
                label,
                str(len(runs)),
                f"{median(walls) * 1e6:,.0f}",
                f"{min(walls) * 1e6:,.0f}",
                f"{max(walls) * 1e6:,.0f}",
                ratio(median(walls), sdk),
                f"{median([r.transport_s for r in runs]) * 1e6:,.0f}",
                f"{client * 1e6:,.0f}",
                ratio(client, sdk_client),
                f"{cpu * 1e6:,.0f}",
                ratio(cpu, sdk_cpu),
                f"{per_run(label, lambda u: u.mock_cpu_s) * 1e6:,.0f}",
                f"{median([u.other_cpu_s / u.wall_s for u in usages[label]]):.0%}",
            ]
        )
    section.tables.append(
        Table(
            header=[
                "client",
                "runs",
                "total µs/run (median)",
                "min",
                "max",
                "vs SDK",
                "HTTP µs/run",
                "client µs/run",
                "vs SDK",
                "CPU µs/run",
                "vs SDK",
                "mock CPU µs/run",
                "other CPU",
            ],
            rows=rows,
        )
    )
    runtime = median([r.wall_s for r in records["agent-runtime"]])
    runtime_client = median([r.client_s for r in records["agent-runtime"]])
    section.notes.append(
        "agent-runtime runs as agents.yaml configures it by default (local JSON-lines tracing "
        "on, retries on, the loop guard); `tracing off` passes `trace_path=False`. The bare SDK "
        "agent is `Agent(model=OpenAIResponsesModel(..., openai_client=AsyncOpenAI(...)), "
        "tools=[function_tool(get_weather)])` run with `RunConfig(tracing_disabled=True)`; the "
        "openai hand loop calls `client.responses.create`, appends the output items and the "
        "function_call_output, and calls again."
    )
    section.verdicts.append(
        Verdict(
            target=f"agent-runtime ≤ {OVERHEAD_TARGET:.2f}x the bare SDK per run",
            holds=runtime <= OVERHEAD_TARGET * sdk,
            detail=(
                f"{runtime * 1e6:,.0f} µs against {sdk * 1e6:,.0f} µs per run "
                f"({runtime / sdk:.2f}x); the client side alone: {runtime_client * 1e6:,.0f} "
                f"against {sdk_client * 1e6:,.0f} µs ({runtime_client / sdk_client:.2f}x)."
            ),
        )
    )
    return section


# -- 2. concurrency ------------------------------------------------------------------------------


async def concurrency(plan: Plan, captured: Captured, state: str) -> Section:
    latency_ms = 100
    ideal = 2 * latency_ms / 1000
    section = Section(
        title="2. Concurrency",
        setup=(
            f"N weather-haiku runs at once, each 2 model calls of {latency_ms} ms (the mock's "
            f"latency model) + 1 tool call: the latency-bound ideal is {ideal * 1000:.0f} ms "
            "of wall time whatever N. Each client gets a pool of N connections; a warm-up round "
            f"opens them, then {plan.concurrency_rounds} measured round(s): median (min-max) "
            f"over rounds (above {BIG_LEVEL}, whose rounds take tens of seconds, one round "
            "that is also the first). CPU ms/call: this process's (the client's) CPU time per "
            "model call; client, mock, other CPU: this process's, the mock's and everything "
            "else's CPU time over the wall time (100 % = one core). retries: model calls made "
            "again after a failure (agent-runtime's retry layer, the openai client's own). "
            "Memory: peak RSS of this process over the rounds (one process for every client: "
            "memory one client freed, the next reuses); heap: Python's allocations per in-flight "
            f"run in the first round (up to {BIG_LEVEL}, under tracemalloc), peak over start."
        ),
    )
    rows = []
    results: dict[tuple[str, int], list[Round]] = {}
    with bench_mock.MockProcess(["--loop-steps", "1", "--first-token-ms", str(latency_ms)]) as mock:
        for level in plan.levels:
            for kind in (*CLIENTS, "httpx"):
                driver = make_driver(kind, mock.url, "weather-haiku", captured, state, level)
                try:
                    first, rounds = await level_rounds(driver, level, plan, mock)
                finally:
                    await driver.aclose()
                for r in {id(r): r for r in [first, *rounds]}.values():
                    section.errors.update(r.errors)
                results[kind, level] = [first, *rounds]
                rows.append(concurrency_row(LABELS[kind], level, ideal, first, rounds))
                print(f"  {' '.join(rows[-1])}", file=sys.stderr, flush=True)
    section.tables.append(
        Table(
            header=[
                "client",
                "runs at once",
                "errors",
                "retries",
                "wall ms",
                "vs ideal",
                "calls/s",
                "CPU ms/call",
                "client CPU",
                "mock CPU",
                "other CPU",
                "limit",
                "peak RSS MiB",
                "heap KiB/run",
            ],
            rows=rows,
        )
    )
    section.notes.append(
        "limit: which side used most of a core over the round (≥ 85 %): `client` or `mock`; "
        "`latency` when neither did and the wall time is within 1.5x the ideal. raw httpx2: a "
        "hand loop on `httpx2.AsyncClient` (the HTTP client the openai package uses) sending "
        "agent-runtime's own request bodies, parsing JSON only; raw httpx 0.28: the same loop on "
        "httpx 0.28's `AsyncClient` with one shared pool of N connections, which costs "
        "milliseconds of CPU per request at 64+ connections (see the mock benchmark)."
    )
    level = 100 if 100 in plan.levels else max(plan.levels)
    runtime_cpu = median([r.cpu_s / r.calls for r in results["runtime", level][1:]])
    raw_cpu = median([r.cpu_s / r.calls for r in results["raw", level][1:]])
    httpx_cpu = median([r.cpu_s / r.calls for r in results["httpx", level][1:]])
    sdk_cpu = median([r.cpu_s / r.calls for r in results["sdk", level][1:]])
    for cpu, what in (
        (httpx_cpu, "raw httpx (httpx 0.28's `AsyncClient`, one shared pool)"),
        (raw_cpu, "the leanest raw client here (httpx2, the openai package's HTTP client)"),
    ):
        section.verdicts.append(
            Verdict(
                target=(
                    f"agent-runtime ≤ {CONCURRENCY_CPU_TARGET:g}x the CPU per model call of "
                    f"{what} at concurrency 100"
                ),
                holds=runtime_cpu <= CONCURRENCY_CPU_TARGET * cpu if level == 100 else None,
                detail=(
                    f"at {level}: {runtime_cpu * 1000:.2f} ms against {cpu * 1000:.2f} ms "
                    f"({runtime_cpu / cpu:.1f}x); the bare SDK {sdk_cpu * 1000:.2f} ms "
                    f"({sdk_cpu / cpu:.1f}x)."
                ),
            )
        )
    top = results.get(("runtime", 1000))
    if top is None:
        section.verdicts.append(
            Verdict(
                target="1,000 concurrent runs complete with zero errors and bounded memory",
                holds=None,
                detail="(1,000 is not in this run's levels.)",
            )
        )
    else:
        unique = list({id(r): r for r in top}.values())
        errors = sum(r.errors.total() for r in unique)
        first = unique[0]
        rss_per_run = (first.peak_rss_kib - first.base_rss_kib) / first.runs
        traced = results.get(("runtime", BIG_LEVEL), [first])[0]
        heap_per_run = (traced.heap_kib or 0.0) / traced.runs
        section.verdicts.append(
            Verdict(
                target=(
                    "1,000 concurrent runs complete with zero errors and bounded memory "
                    f"(< {BOUNDED_RSS_KIB:,} KiB per in-flight run)"
                ),
                holds=errors == 0 and max(rss_per_run, heap_per_run) < BOUNDED_RSS_KIB,
                timed=False,
                detail=(
                    f"agent-runtime: {errors} errors in {sum(r.runs for r in unique):,} runs; "
                    f"peak RSS {max(r.peak_rss_kib for r in unique) / 1024:.0f} MiB, "
                    f"{rss_per_run:.0f} KiB of RSS growth per in-flight run at {first.runs:,} "
                    "(agent-runtime runs first at each level, so that growth is its own); "
                    f"{heap_per_run:.0f} KiB of Python allocations per in-flight run at "
                    f"{traced.runs:,} (tracemalloc); {sum(r.retries for r in unique)} model "
                    "calls retried."
                ),
            )
        )
    return section


async def level_rounds(
    driver: Driver, level: int, plan: Plan, mock: bench_mock.MockProcess
) -> tuple[Round, list[Round]]:
    """The first round at a level (a warm-up under tracemalloc), then the measured rounds;
    above `BIG_LEVEL`, whose rounds are long and CPU-bound, one round that is both."""
    if level > BIG_LEVEL:
        only = await concurrent_round(driver, PROMPT, level, 2, mock)
        return only, [only]
    first = await concurrent_round(driver, PROMPT, level, 2, mock, trace_memory=True)
    rounds = [
        await concurrent_round(driver, PROMPT, level, 2, mock)
        for _ in range(plan.concurrency_rounds)
    ]
    return first, rounds


def concurrency_row(
    label: str, level: int, ideal: float, first: Round, rounds: list[Round]
) -> list[str]:
    wall = median([r.wall_s for r in rounds])
    client = median([r.cpu_s / r.wall_s for r in rounds])
    served = median([r.usage.mock_cpu_s / r.wall_s for r in rounds])
    other = median([r.usage.other_cpu_s / r.wall_s for r in rounds])
    if client >= 0.85 and client >= served:
        limit = "client"
    elif served >= 0.85:
        limit = "mock"
    elif wall <= 1.5 * ideal:
        limit = "latency"
    else:
        limit = "-"
    heap = "-" if first.heap_kib is None else f"{first.heap_kib / first.runs:,.0f}"
    unique = {id(r): r for r in [first, *rounds]}.values()
    return [
        label,
        f"{level:,}",
        str(sum(r.errors.total() for r in unique)),
        str(sum(r.retries for r in unique)),
        spread([r.wall_s for r in rounds], 1000),
        f"{wall / ideal:.2f}x",
        f"{median([r.calls / r.wall_s for r in rounds]):,.0f}",
        spread([r.cpu_s / r.calls for r in rounds], 1000, 2),
        f"{client:.0%}",
        f"{served:.0%}",
        f"{other:.0%}",
        limit,
        f"{max(r.peak_rss_kib for r in unique) / 1024:.0f}",
        heap,
    ]


# -- 3. streaming --------------------------------------------------------------------------------


async def streaming(plan: Plan, captured: Captured, state: str) -> Section:
    first_ms, per_ms = 50, 5
    section = Section(
        title="3. Streaming",
        setup=(
            f"Latency model: {first_ms} ms to the first token, {per_ms} ms per token. Time "
            "from the start of a run to its first reasoning token (`ReasoningDelta`) and first "
            "answer token (`TextDelta`) through `Runtime.stream()`, against the mock's own "
            "timing seen by a raw SSE request with the same body (httpx2, lines only), and "
            "the bare SDK's `Runner.run_streamed`. plain: an agent without tools (one model "
            "call); weather-haiku: a tool call, then the answer (two model calls; the raw row "
            f"sends the two captured requests back to back). Median (min-max) of "
            f"{plan.stream_runs} runs, after one warm-up."
        ),
    )
    rows = []
    with bench_mock.MockProcess(
        ["--loop-steps", "1", "--first-token-ms", str(first_ms), "--per-token-ms", str(per_ms)]
    ) as mock:
        raw = httpx2.AsyncClient(
            base_url=mock.url, headers=captured.headers, timeout=REQUEST_TIMEOUT_S
        )
        cases: list[tuple[str, Sequence[bytes]]] = [
            ("plain", [captured.plain_stream]),
            ("weather-haiku", captured.weather_stream),
        ]
        try:
            with Meter(mock) as meter:
                for agent, bodies in cases:
                    runtime = RuntimeDriver(mock.url, agent, state)
                    sdk = SdkDriver(mock.url, agent)
                    measures: list[tuple[str, Callable[[], Awaitable[StreamTimes]]]] = [
                        ("mock, raw SSE", functools.partial(raw_stream_run, raw, bodies)),
                        ("agent-runtime", functools.partial(runtime_stream, runtime, PROMPT)),
                        (SdkDriver.label, functools.partial(sdk_stream, sdk, PROMPT)),
                    ]
                    try:
                        times: dict[str, list[StreamTimes]] = {label: [] for label, _ in measures}
                        for _, measure in measures:
                            await measure()
                        for _ in range(plan.stream_runs):
                            for label, measure in measures:
                                times[label].append(await measure())
                    finally:
                        await runtime.aclose()
                        await sdk.aclose()
                    base = times["mock, raw SSE"]
                    for label, samples in times.items():
                        rows.append(stream_row(agent, label, samples, base))
        finally:
            await raw.aclose()
    section.tables.append(
        Table(
            header=[
                "agent",
                "path",
                "first byte ms",
                "first reasoning token ms",
                "added",
                "first answer token ms",
                "added",
                "end of run ms",
                "added",
            ],
            rows=rows,
        )
    )
    usage = meter.usage
    section.notes.append(
        "added: the median over the raw SSE row's median, i.e. what the client adds on the way "
        "to that token (for weather-haiku it includes the tool call and the SDK's turn "
        "between the two requests). CPU meanwhile, in shares of one core: this process "
        f"{usage.share(usage.cpu_s)}, the mock {usage.share(usage.mock_cpu_s)}, the rest of "
        f"the machine {usage.share(usage.other_cpu_s)}."
    )
    return section


def stream_row(
    agent: str, label: str, samples: list[StreamTimes], base: list[StreamTimes]
) -> list[str]:
    def cells(pick: Callable[[StreamTimes], float | None]) -> list[str]:
        values = [v for v in map(pick, samples) if v is not None]
        reference = [v for v in map(pick, base) if v is not None]
        if not values:
            return ["-", "-"]
        added = median(values) - median(reference)
        return [spread(values, 1000, 1), f"{added * 1000:+.1f}"]

    first = [s.first_byte for s in samples if s.first_byte is not None]
    return [
        agent,
        label,
        spread(first, 1000, 1) if first else "-",
        *cells(lambda s: s.reasoning),
        *cells(lambda s: s.text),
        *cells(lambda s: s.end),
    ]


# -- 4. start-up ---------------------------------------------------------------------------------


def startup(plan: Plan) -> Section:
    runs = plan.startup_runs
    section = Section(
        title="4. Start-up",
        setup=(
            "Wall time of CLI commands (scripts/bench_startup.py's measurements): median "
            f"(min-max) of {runs} run(s) after one warm-up. `run → first request`: from "
            "starting `agent-runtime run` until its first request reaches a socket listening "
            "here (which answers 503, so the run ends at once); it and `import agents` run in "
            "turns, and what `run` adds is the median of their differences."
        ),
    )
    agent_runtime = bench_startup.AGENT_RUNTIME
    config = ["-c", str(ROOT / "agents.yaml")]
    before, busy, start = os.times(), bench_mock.machine_busy_seconds(), time.perf_counter()
    rows = {
        "agent-runtime --help": bench_startup.wall([agent_runtime, "--help"], runs),
        "agent-runtime validate": bench_startup.wall([agent_runtime, "validate", *config], runs),
    }
    run_times, import_times = bench_startup.first_request(runs)
    rows['python -c "import agents"'] = import_times
    rows["agent-runtime run → first request"] = run_times
    after = os.times()
    ours = sum(after[:4]) - sum(before[:4])  # this process and the commands it ran
    other = bench_mock.machine_busy_seconds() - busy - ours
    section.tables.append(
        Table(
            header=["command", "ms"],
            rows=[[f"`{name}`", spread(times, 1000)] for name, times in rows.items()],
        )
    )
    section.notes.append(
        "Meanwhile the rest of the machine (not these commands) kept "
        f"{max(0.0, other) / (time.perf_counter() - start):.0%} of a core busy."
    )
    fast = max(median(rows["agent-runtime --help"]), median(rows["agent-runtime validate"]))
    added = bench_startup.added_by_run(run_times, import_times)
    section.verdicts += [
        Verdict(
            target="`--help` and `validate` take ≤ 0.3 s",
            holds=fast <= 0.3,
            detail=f"the slower median is {fast * 1000:.0f} ms.",
        ),
        Verdict(
            target="`run` adds ≤ 0.3 s to `import agents` before its first request",
            holds=added <= 0.3,
            detail=f"it adds {added * 1000:.0f} ms (median of the paired differences).",
        ),
    ]
    return section


# -- 5. prefix stability -------------------------------------------------------------------------


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


async def prefix(plan: Plan, state: str) -> Section:
    from agent_runtime.testing import HarmonyUnavailableError, MockVLLM, ToolLoop

    steps = 5
    section = Section(
        title="5. Prefix stability (harmony)",
        setup=(
            f"One run of {steps} tool calls and an answer, against the mock in harmony mode, "
            "which renders each request into the exact prompt tokens vLLM would give gpt-oss. "
            "For each turn: the share of its prompt tokens that the next turn's prompt starts "
            "with (longest common prefix / prompt length), a proxy for vLLM's prefix-cache "
            "hits; 100 % means the transcript only grew at its end."
        ),
    )
    prompts: dict[str, list[tuple[int, ...]]] = {}
    try:
        async with MockVLLM(
            default=ToolLoop(steps=steps), harmony=True, seed=0, start_date=HARMONY_DATE
        ) as mock:
            runtime = RuntimeDriver(mock.url, "weather-haiku", state)
            sdk = SdkDriver(mock.url, "weather-haiku")
            try:
                for label, driver in (("agent-runtime", runtime), (SdkDriver.label, sdk)):
                    seen = len(mock.model_requests)
                    check_output(await driver.run(PROMPT))
                    prompts[label] = [r.prompt_token_ids or () for r in mock.model_requests[seen:]]
            finally:
                await runtime.aclose()
                await sdk.aclose()
    except HarmonyUnavailableError as exc:
        section.notes.append(f"Not measured: {exc}")
        section.verdicts.append(
            Verdict(target="append-only prompts", holds=None, detail="no harmony vocabulary.")
        )
        return section
    turns = max(len(p) for p in prompts.values())
    rows = []
    for label, ids in prompts.items():
        cells = []
        for i in range(turns - 1):
            if i + 1 < len(ids):
                shared = common_prefix(ids[i], ids[i + 1])
                cells.append(f"{shared / len(ids[i]):.1%} of {len(ids[i]):,}")
            else:
                cells.append("-")
        rows.append([label, *cells, f"{len(ids[-1]):,}"])
    section.tables.append(
        Table(
            header=["client", *(f"turn {i + 1} → {i + 2}" for i in range(turns - 1)), "last"],
            rows=rows,
        )
    )
    section.notes.append(
        "Cells: share of turn k's prompt tokens that turn k+1's prompt starts with, of turn "
        "k's prompt length in tokens; last: the final turn's prompt length."
    )
    worst = min(
        common_prefix(ids[i], ids[i + 1]) / len(ids[i])
        for ids in prompts.values()
        for i in range(len(ids) - 1)
    )
    runtime_worst = min(
        common_prefix(ids[i], ids[i + 1]) / len(ids[i])
        for ids in [prompts["agent-runtime"]]
        for i in range(len(ids) - 1)
    )
    section.verdicts.append(
        Verdict(
            target="each turn's prompt is a prefix of the next (agent-runtime)",
            holds=runtime_worst == 1.0,
            detail=f"lowest share: agent-runtime {runtime_worst:.1%}, all clients {worst:.1%}.",
            timed=False,
        )
    )
    return section


# -- 6. long loops -------------------------------------------------------------------------------


async def long_loops(plan: Plan, captured: Captured, state: str) -> Section:
    page = len(bench_tools.read_page("Tokyo"))
    section = Section(
        title="6. Long loops",
        setup=(
            f"Runs of N tool steps (N + 1 model calls) whose tool returns {page:,} characters, "
            "one run at a time, against the mock with zero latency (a mock process per N). "
            "request path: per model call, the time the SDK model's `get_response` (for raw, "
            "serialising, posting and parsing) took less its time in the HTTP transport; turn: "
            "the client's time between two requests (parse the answer, run the tool, the SDK's "
            "bookkeeping, build and send the next request). CPU: this process's CPU time per "
            f"model call; other: the rest of the machine's CPU time over the wall time. Median "
            f"(min-max) over {plan.loop_runs} run(s) per client and N, after one warm-up run "
            "for N ≤ 10."
        ),
    )
    records: dict[tuple[str, int], list[RunRecord]] = {}
    usages: dict[tuple[str, int], Usage] = {}
    for steps in plan.loop_steps:
        options = ["--loop-steps", str(steps), "--loop-tool", "read_page"]
        with bench_mock.MockProcess(options) as mock:
            for kind in CLIENTS:
                driver = make_driver(kind, mock.url, "long-loop", captured, state, 10)
                try:
                    if steps <= 10:
                        await driver.measure(LONG_PROMPT)
                    gc.collect()
                    with Meter(mock) as meter:
                        runs = [await driver.measure(LONG_PROMPT) for _ in range(plan.loop_runs)]
                    usages[kind, steps] = meter.usage
                finally:
                    await driver.aclose()
                if any(r.calls != steps + 1 for r in runs):
                    raise WrongAnswer(f"{LABELS[kind]}: not {steps + 1} model calls per run")
                records[kind, steps] = runs
                wall = median([r.wall_s for r in runs])
                print(f"  {LABELS[kind]:16} {steps:4} steps: {wall:.3f} s", file=sys.stderr)
    rows = []
    for steps in plan.loop_steps:
        raw_wall = median([r.wall_s for r in records["raw", steps]])
        for kind in CLIENTS:
            runs = records[kind, steps]
            usage, calls = usages[kind, steps], sum(r.calls for r in runs)
            rows.append(
                [
                    LABELS[kind],
                    str(steps),
                    spread([r.wall_s for r in runs], 1000, 1),
                    ratio(median([r.wall_s for r in runs]), raw_wall),
                    spread([r.client_s / r.calls for r in runs], 1000, 2),
                    f"{median([median(r.paths_s) for r in runs]) * 1000:.2f}",
                    f"{usage.cpu_s / calls * 1000:.2f}",
                    f"{usage.mock_cpu_s / calls * 1000:.2f}",
                    usage.share(usage.other_cpu_s),
                    f"{runs[0].body_bytes[-1] / 1024:,.0f}",
                ]
            )
    section.tables.append(
        Table(
            caption="Whole runs:",
            header=[
                "client",
                "steps",
                "run ms",
                "vs raw",
                "client ms/call",
                "request path ms/call (median)",
                "CPU ms/call",
                "mock CPU ms/call",
                "other CPU",
                "last request KiB",
            ],
            rows=rows,
        )
    )
    longest = max(plan.loop_steps)
    points = [k for k in (0, 1, 10, 40, 100) if k <= longest]
    per_turn: dict[str, dict[int, tuple[float, float, float]]] = {}
    turn_rows = []
    for kind in CLIENTS:
        runs = records[kind, longest]
        per_turn[kind] = {
            k: (
                median([r.paths_s[i] for r in runs for i in window(k, longest)]),
                median([r.turns_s[i] for r in runs for i in window(k, longest)]),
                median([r.paths_s[i] + r.http_s[i] for r in runs for i in window(k, longest)]),
            )
            for k in points
        }
        turn_rows.append(
            [
                LABELS[kind],
                *(f"{per_turn[kind][k][0] * 1000:.2f}" for k in points),
                *(f"{per_turn[kind][k][2] * 1000:.2f}" for k in points),
                *(f"{per_turn[kind][k][1] * 1000:.2f}" for k in points),
            ]
        )
    section.tables.append(
        Table(
            caption=(
                f"Per model call of the {longest}-step runs, by the number of tool steps "
                "before it (0 = the first call; k = the call that carries k tool outputs); "
                "from 10 on, the median over the calls with k-2 to k+2 prior steps. request "
                "path: the client's own time in the call; request: the whole call, the HTTP "
                "round trip to the mock included (what a caller of `responses.create` waits "
                "for); turn: the client's time between two requests:"
            ),
            header=[
                "client",
                *(f"request path ms, {k} prior" for k in points),
                *(f"request ms, {k} prior" for k in points),
                *(f"turn ms, {k} prior" for k in points),
            ],
            rows=turn_rows,
        )
    )
    if 40 in points:
        path, raw_path = per_turn["runtime"][40][0], per_turn["raw"][40][0]
        sdk_path = per_turn["sdk"][40][0]
        call, raw_call, sdk_call = (per_turn[kind][40][2] for kind in ("runtime", "raw", "sdk"))
        section.verdicts.append(
            Verdict(
                target=(
                    f"at 40 prior steps, agent-runtime's time per request ≤ {LONG_PATH_TARGET:g}x "
                    "a raw httpx POST of the same JSON (round trip included)"
                ),
                holds=call <= LONG_PATH_TARGET * raw_call,
                detail=(
                    f"{call * 1000:.2f} ms against {raw_call * 1000:.2f} ms "
                    f"({call / raw_call:.1f}x; the bare SDK {sdk_call * 1000:.2f} ms, "
                    f"{sdk_call / raw_call:.1f}x). The client's own time alone (request path): "
                    f"{path * 1000:.2f} ms against {raw_path * 1000:.2f} ms "
                    f"({path / raw_path:.1f}x); the bare SDK {sdk_path * 1000:.2f} ms "
                    f"({sdk_path / raw_path:.1f}x)."
                ),
            )
        )
    else:
        section.verdicts.append(
            Verdict(
                target=f"at 40 prior steps, time per request ≤ {LONG_PATH_TARGET:g}x raw httpx",
                holds=None,
                detail=f"(runs of at most {longest} steps here.)",
            )
        )
    if 100 in points:
        turns = per_turn["runtime"]
        growth = turns[100][1] / turns[10][1]
        sdk_growth = per_turn["sdk"][100][1] / per_turn["sdk"][10][1]
        section.verdicts.append(
            Verdict(
                target=(
                    "a 100-step run's client time grows at most linearly: agent-runtime's turn "
                    f"at 100 prior steps ≤ {FLAT_TURN_TARGET:g}x its turn at 10"
                ),
                holds=growth <= FLAT_TURN_TARGET,
                detail=(
                    f"{turns[100][1] * 1000:.2f} ms against {turns[10][1] * 1000:.2f} ms "
                    f"({growth:.2f}x; the bare SDK {sdk_growth:.2f}x, raw httpx "
                    f"{per_turn['raw'][100][1] / per_turn['raw'][10][1]:.2f}x)."
                ),
            )
        )
        path_growth = turns[100][0] / turns[10][0]
        raw_path_growth = per_turn["raw"][100][0] / per_turn["raw"][10][0]
        section.verdicts.append(
            Verdict(
                target=(
                    "agent-runtime's own per-request work stays flat: its request path at 100 "
                    f"prior steps ≤ {FLAT_TURN_TARGET:g}x its request path at 10"
                ),
                holds=path_growth <= FLAT_TURN_TARGET,
                detail=(
                    f"{turns[100][0] * 1000:.2f} ms against {turns[10][0] * 1000:.2f} ms "
                    f"({path_growth:.2f}x; raw httpx {raw_path_growth:.2f}x). The rest of the "
                    f"turn at 100 prior steps, {(turns[100][1] - turns[100][0]) * 1000:.2f} ms "
                    f"(at 10: {(turns[10][1] - turns[10][0]) * 1000:.2f} ms), is the Agents "
                    "SDK's run loop and the tool (docs/upstream-notes.md)."
                ),
            )
        )
    else:
        section.verdicts.append(
            Verdict(
                target="a 100-step run's client time grows at most linearly",
                holds=None,
                detail=f"(runs of at most {longest} steps here.)",
            )
        )
    return section


def window(k: int, steps: int) -> range:
    """The calls whose times stand for call `k` of a long run: k, or k-2 to k+2 from 10 on."""
    if k < 10:
        return range(k, k + 1)
    return range(k - 2, min(steps, k + 2) + 1)


# -- 7. concurrency with long transcripts --------------------------------------------------------


async def long_concurrency(plan: Plan, captured: Captured, state: str) -> Section:
    runs, steps = plan.long_concurrency, plan.long_steps
    section = Section(
        title="7. Concurrency with long transcripts",
        setup=(
            f"{runs} runs at once of the long-loop agent, {steps} tool steps each (1 KB tool "
            "outputs), zero mock latency: the client's throughput when it, not the model, is "
            f"the limit. Median (min-max) over {plan.long_rounds} round(s) after a warm-up "
            "of 2 runs."
        ),
    )
    rows = []
    per_run: dict[str, float] = {}
    options = ["--loop-steps", str(steps), "--loop-tool", "read_page"]
    with bench_mock.MockProcess(options) as mock:
        for kind in CLIENTS:
            driver = make_driver(kind, mock.url, "long-loop", captured, state, runs)
            try:
                warm = await concurrent_round(driver, LONG_PROMPT, 2, steps + 1, mock)
                rounds = [
                    await concurrent_round(driver, LONG_PROMPT, runs, steps + 1, mock)
                    for _ in range(plan.long_rounds)
                ]
            finally:
                await driver.aclose()
            for r in [warm, *rounds]:
                section.errors.update(r.errors)
            per_run[kind] = median([r.cpu_s / r.runs for r in rounds])
            rows.append(
                [
                    LABELS[kind],
                    str(sum(r.errors.total() for r in [warm, *rounds])),
                    str(sum(r.retries for r in [warm, *rounds])),
                    spread([r.wall_s for r in rounds], 1000),
                    spread([r.runs / r.wall_s for r in rounds], 1, 1),
                    spread([r.cpu_s / r.runs for r in rounds], 1000, 1),
                    f"{median([r.cpu_s / r.calls for r in rounds]) * 1000:.2f}",
                    f"{median([r.cpu_s / r.wall_s for r in rounds]):.0%}",
                    f"{median([r.usage.mock_cpu_s / r.wall_s for r in rounds]):.0%}",
                    f"{median([r.usage.other_cpu_s / r.wall_s for r in rounds]):.0%}",
                    f"{max(r.peak_rss_kib for r in rounds) / 1024:.0f}",
                ]
            )
            print(f"  {' '.join(rows[-1])}", file=sys.stderr, flush=True)
    section.tables.append(
        Table(
            header=[
                "client",
                "errors",
                "retries",
                "wall ms",
                "runs/s",
                "CPU ms/run",
                "CPU ms/call",
                "client CPU",
                "mock CPU",
                "other CPU",
                "peak RSS MiB",
            ],
            rows=rows,
        )
    )
    section.notes.append(
        f"CPU per run: agent-runtime {per_run['runtime'] * 1000:.0f} ms, the bare SDK "
        f"{per_run['sdk'] * 1000:.0f} ms ({per_run['sdk'] / per_run['runtime']:.1f}x "
        f"agent-runtime's), raw httpx2 {per_run['raw'] * 1000:.0f} ms "
        f"(agent-runtime {per_run['runtime'] / per_run['raw']:.1f}x raw)."
    )
    return section


# -- profiling -----------------------------------------------------------------------------------


PROFILE_CASES = {
    "overhead": ("weather-haiku", PROMPT, ["--loop-steps", "1"]),
    "long-loop": ("long-loop", LONG_PROMPT, ["--loop-steps", "40", "--loop-tool", "read_page"]),
}


async def profile_case(case: str, seconds: float, state: str) -> None:
    """Run agent-runtime's overhead or long-loop (40 steps) case for `seconds`, one run at a
    time, under pyinstrument if it is installed (`uv run --with pyinstrument ...`); otherwise
    just run it, e.g. under py-spy."""
    agent, prompt, options = PROFILE_CASES[case]
    try:
        pyinstrument: Any = importlib.import_module("pyinstrument")
    except ImportError:
        pyinstrument = None
    profiler = (
        pyinstrument.Profiler(interval=0.0005, async_mode="disabled") if pyinstrument else None
    )
    runs = 0
    with bench_mock.MockProcess(options) as mock:
        driver = RuntimeDriver(mock.url, agent, state)
        try:
            check_output(await driver.run(prompt))
            deadline = time.perf_counter() + seconds
            if profiler is not None:
                profiler.start()
            while time.perf_counter() < deadline:
                check_output(await driver.run(prompt))
                runs += 1
            if profiler is not None:
                profiler.stop()
        finally:
            await driver.aclose()
    print(f"{case}: {runs} agent-runtime runs in {seconds:g} s")
    if profiler is None:
        print("(pyinstrument is not installed: nothing sampled here; use py-spy, or --with)")
        return
    print(top_frames(profiler.last_session.root_frame(), 25))


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark agent-runtime against the bare Agents SDK (see BENCHMARKS.md)."
    )
    parser.add_argument("--quick", action="store_true", help="a CI-sized run")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a target that is not about speed is missed (errors, memory, prefix "
        "stability); speed targets are reported, never enforced (the machine may be busy)",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="also print the section for BENCHMARKS.md"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help="comma-separated sections to run (default: all): %(default)s",
    )
    parser.add_argument(
        "--profile",
        choices=("overhead", "long-loop"),
        help="instead, profile agent-runtime in that case (pyinstrument, if installed)",
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=10.0, help="how long to profile (default 10)"
    )
    return parser.parse_args(argv)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


Runner_ = Callable[[Plan, Captured, str], Coroutine[Any, Any, Section]]


def run_sections(keys: Sequence[str], plan: Plan, state: str) -> list[Section]:
    captured = asyncio.run(capture())
    asynchronous: dict[str, Runner_] = {
        "overhead": overhead,
        "concurrency": concurrency,
        "streaming": streaming,
        "long-loops": long_loops,
        "long-concurrency": long_concurrency,
    }
    sections = []
    for key in keys:
        print(f"[{key}]", file=sys.stderr, flush=True)
        if key == "startup":
            section = startup(plan)
        elif key == "prefix":
            section = asyncio.run(prefix(plan, state))
        else:
            section = asyncio.run(asynchronous[key](plan, captured, state))
        print(section_text(section), flush=True)
        sections.append(section)
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = {key.strip() for key in args.only.split(",") if key.strip()}
    keys = [key for key in SECTIONS if key in chosen]
    unknown = sorted(chosen - set(SECTIONS))
    if unknown or not keys:
        print(
            f"Error: --only {args.only!r}: unknown section(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(SECTIONS)}.",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # stop the mock on SIGTERM too, as on Ctrl-C
    plan = Plan.for_run(quick=args.quick)
    options = ["--quick"] if args.quick else []
    if keys != list(SECTIONS):
        options += ["--only", ",".join(keys)]
    command = " ".join(["uv run python scripts/bench.py", *options])
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="agent-runtime-bench-") as state:
            if args.profile:
                asyncio.run(profile_case(args.profile, args.profile_seconds, state))
                return 0
            print("\n".join(machine_lines(command)) + "\n", flush=True)
            sections = run_sections(keys, plan, state)
    except KeyboardInterrupt:
        print("Interrupted; the mock was stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, WrongAnswer) as exc:
        print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    if args.markdown:
        print()
        print("## Runtime (`scripts/bench.py`)\n")
        print("\n".join(f"- {line}" for line in machine_lines(command)) + "\n")
        for section in sections:
            print(section_markdown(section))
    errors = Counter[str]()
    for section in sections:
        errors.update(section.errors)
    for error, count in errors.most_common(5):
        print(f"{count} x {error}", file=sys.stderr)
    missed = [v for s in sections for v in s.verdicts if not v.timed and v.holds is False]
    for verdict in missed if args.check else []:
        print(f"Missed: {verdict.target}: {verdict.detail}", file=sys.stderr)
    return 1 if errors or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
