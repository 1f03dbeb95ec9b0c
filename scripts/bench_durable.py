"""Benchmark durable runs: runs/s with 1 and 2 `agent-runtime worker` processes against
in-process `Runtime.run`, the latency a durable run adds per step, and how long a SIGKILLed
worker's runs wait before another worker goes on with them.

    uv run python scripts/bench_durable.py              # full run, a few minutes
    uv run python scripts/bench_durable.py --quick      # CI-sized
    uv run python scripts/bench_durable.py --database-url postgresql://...   # an existing DB

The database is a throwaway PostgreSQL cluster (tests/durable/postgres.py: `initdb` in a
temporary folder) unless `--database-url` names one; without the PostgreSQL binaries, a SQLite
file. The model is the mock vLLM server in its own process (`--tool-loop`: one tool call, then
the answer: 2 model calls and 1 tool call per run, zero latency), so the figures are the
engine's overhead, not a model's speed. Workers are the real command, each its own process;
this process submits the runs and waits for their results as a client (`Runtime.submit`,
`Runtime.result`).

1. throughput: N runs submitted at once, run by 1 and 2 workers (`concurrency` 10 each), from
   the first submission to the last result; in-process: the same N runs with `Runtime.run`,
   10 at a time.
2. added latency: one run at a time, submitted and waited for, against `Runtime.run`; the
   difference per step (model call, tool call, session read and write are steps).
3. recovery: 2 workers, the mock answering after 1 s; 6 runs; once the first worker is
   executing some, it gets SIGKILL; the time until each of its runs is going again on the other
   worker (its executor changes), and until the last one finished.

It prints a Markdown section for BENCHMARKS.md. Exit status: 0, or 1 when a run failed or
answered wrongly (speed is reported, never enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import bench_mock  # noqa: E402

from agent_runtime import Runtime  # noqa: E402
from agent_runtime.config import load_config  # noqa: E402

AGENT = "weather"
EXPECTED = "Done: sunny in Tokyo"
READY = re.compile(r"^Worker (\S+) executing runs", re.MULTILINE)
START_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 300.0
CONCURRENCY = 10

TOOLS = '''\
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"
'''


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    runs: int
    serial: int
    recovery_runs: int = 6


@dataclass(slots=True)
class Report:
    database: str = ""
    throughput: list[tuple[str, int, float]] = field(default_factory=list)
    latency: list[tuple[str, float]] = field(default_factory=list)
    steps_per_run: int = 0
    takeover_s: list[float] = field(default_factory=list)
    finished_s: float = 0.0
    killed_runs: int = 0
    errors: list[str] = field(default_factory=list)


def write_project(root: Path, database_url: str, mock_url: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    module = f"bench_durable_tools_{root.name}"  # one name per project: one process loads both
    (root / f"{module}.py").write_text(TOOLS, encoding="utf-8")
    config = root / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "sessions: {path: state/sessions.sqlite3}\n"
        "tracing: {enabled: false}\n"
        "durability:\n"
        f"  database_url: {database_url}\n"
        f"  concurrency: {CONCURRENCY}\n"
        "  poll_s: 0.05\n"
        "backends:\n"
        f"  mock: {{base_url: '{mock_url}', model: openai/gpt-oss-20b}}\n"
        "tools:\n"
        f"  get_weather: {{function: '{module}:get_weather'}}\n"
        f"agents:\n  {AGENT}: {{instructions: Answer., backend: mock, tools: [get_weather]}}\n",
        encoding="utf-8",
    )
    return config


class Worker:
    """One `agent-runtime worker` process, its stderr in a file."""

    def __init__(self, config: Path, name: str) -> None:
        self.log = config.parent / f"{name}.log"
        with self.log.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent_runtime", "worker", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.executor_id = ""

    def ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (match := READY.search(self.log.read_text(errors="replace"))) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.executor_id = match.group(1)
        return self.executor_id

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def workers(config: Path, count: int) -> Iterator[list[Worker]]:
    started = [Worker(config, f"worker-{i}-{time.monotonic_ns()}") for i in range(count)]
    try:
        for worker in started:
            worker.ready()
        yield started
    finally:
        for worker in started:
            worker.stop()


def runtime(config: Path) -> Runtime:
    return Runtime(load_config(config), trace_path=False)


def check(report: Report, output: object) -> None:
    if output != EXPECTED:
        report.errors.append(f"wrong answer: {output!r}")


async def durable_batch(config: Path, runs: int, report: Report) -> float:
    """Submit `runs` at once, wait for every result; the seconds it took."""
    client = runtime(config)
    try:
        started = time.perf_counter()
        handles = await asyncio.gather(*(client.submit(AGENT, "Tokyo?") for _ in range(runs)))
        results = await asyncio.gather(
            *(client.result(h.run_id, timeout=RUN_TIMEOUT_S) for h in handles),
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
    finally:
        await client.aclose()
    for result in results:
        if isinstance(result, BaseException):
            report.errors.append(f"{type(result).__name__}: {result}")
        else:
            check(report, result.final_output)
    return elapsed


async def in_process_batch(config: Path, runs: int, report: Report) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)
    async with Runtime(load_config(config), trace_path=False) as local:

        async def one() -> None:
            async with gate:
                result = await local.run(AGENT, "Tokyo?")
                check(report, result.final_output)

        await local.run(AGENT, "warm up")
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(runs)))
        return time.perf_counter() - started


async def serial_latency(config: Path, runs: int, report: Report) -> tuple[float, float, int]:
    """Median seconds per run: durable (submit + result), in-process; steps per run."""
    client = runtime(config)
    durable: list[float] = []
    steps = 0
    try:
        for _ in range(runs + 1):
            started = time.perf_counter()
            handle = await client.submit(AGENT, "Tokyo?")
            result = await client.result(handle.run_id, timeout=RUN_TIMEOUT_S)
            durable.append(time.perf_counter() - started)
            check(report, result.final_output)
            tools = sum(1 for item in result.items if item.type == "tool_result")
            steps = result.turns + tools
    finally:
        await client.aclose()
    local: list[float] = []
    async with Runtime(load_config(config), trace_path=False) as plain:
        for _ in range(runs + 1):
            started = time.perf_counter()
            result = await plain.run(AGENT, "Tokyo?")
            local.append(time.perf_counter() - started)
    return statistics.median(durable[1:]), statistics.median(local[1:]), steps


async def recovery(config: Path, runs: int, report: Report) -> None:
    client = runtime(config)
    try:
        with workers(config, 2) as (first, _):
            handles = [await client.submit(AGENT, "Tokyo?") for _ in range(runs)]
            ids = [h.run_id for h in handles]
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                mine = [
                    s.run_id
                    for s in (client.status(i) for i in ids)
                    if s.status == "running" and s.executor == first.executor_id
                ]
                if mine or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            first.process.kill()
            first.process.wait()
            killed = time.monotonic()
            report.killed_runs = len(mine)
            waiting = set(mine)
            while waiting and time.monotonic() - killed < RUN_TIMEOUT_S:
                for run_id in list(waiting):
                    status = client.status(run_id)
                    if status.executor not in (None, first.executor_id):
                        report.takeover_s.append(time.monotonic() - killed)
                        waiting.discard(run_id)
                await asyncio.sleep(0.02)
            for run_id in ids:
                result = await client.result(run_id, timeout=RUN_TIMEOUT_S)
                check(report, result.final_output)
            report.finished_s = time.monotonic() - killed
    finally:
        await client.aclose()


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.durable.postgres import find_bin_dir, start_cluster, stop_cluster

    if find_bin_dir() is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/runs.sqlite"
        return
    cluster = start_cluster()
    try:
        yield cluster.create_database()
    finally:
        stop_cluster(cluster)


def measure(plan: Plan, url: str | None) -> Report:
    report = Report()
    with database(url) as db, tempfile.TemporaryDirectory() as folder:
        report.database = "PostgreSQL" if db.startswith("postgres") else "SQLite"
        with bench_mock.MockProcess([]) as mock:
            config = write_project(Path(folder) / "fast", db, mock.url)
            report.throughput.append(
                (
                    "in-process `Runtime.run`",
                    plan.runs,
                    plan.runs / asyncio.run(in_process_batch(config, plan.runs, report)),
                )
            )
            for count in (1, 2):
                with workers(config, count):
                    asyncio.run(durable_batch(config, 5, report))  # warm up
                    seconds = asyncio.run(durable_batch(config, plan.runs, report))
                    report.throughput.append(
                        (
                            f"{count} worker{'s' if count > 1 else ''}",
                            plan.runs,
                            plan.runs / seconds,
                        )
                    )
                    if count == 1:
                        durable, local, steps = asyncio.run(
                            serial_latency(config, plan.serial, report)
                        )
                        report.latency = [("durable", durable), ("in-process", local)]
                        report.steps_per_run = steps
        with bench_mock.MockProcess(["--first-token-ms", "1000"]) as slow:
            config = write_project(Path(folder) / "slow", db, slow.url)
            asyncio.run(recovery(config, plan.recovery_runs, report))
    return report


def markdown(report: Report) -> str:
    lines = [
        "## Durable runs (DBOS)",
        "",
        f"Database: {report.database}; mock vLLM with zero latency (2 model calls + 1 tool call "
        f"per run); workers with concurrency {CONCURRENCY}, `poll_s: 0.05`. Machine: "
        f"{os.cpu_count()} CPUs.",
        "",
        "| how | runs | runs/s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {how} | {runs} | {rate:.1f} |" for how, runs, rate in report.throughput]
    if report.latency:
        durable, local = report.latency[0][1], report.latency[1][1]
        steps = max(report.steps_per_run, 1)
        lines += [
            "",
            f"One run at a time: durable {durable * 1000:.0f} ms (submit to result, queue pickup "
            f"included) vs in-process {local * 1000:.0f} ms: {(durable - local) * 1000:.0f} ms "
            f"more per run, {(durable - local) * 1000 / steps:.0f} ms per step ({steps} steps: "
            "model and tool calls).",
        ]
    if report.takeover_s:
        lines += [
            "",
            f"Recovery: {report.killed_runs} runs of a SIGKILLed worker (model answering after "
            f"1 s) went on on the other worker {min(report.takeover_s):.1f} to "
            f"{max(report.takeover_s):.1f} s after the kill (`takeover_after_s: 5`, heartbeat "
            f"1 s); all runs finished {report.finished_s:.1f} s after it.",
        ]
    if report.errors:
        lines += ["", f"Errors: {len(report.errors)} (first: {report.errors[0]})"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run.")
    parser.add_argument("--database-url", help="An existing database instead of a throwaway one.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(runs=40, serial=5) if args.quick else Plan(runs=200, serial=20)
    report = measure(plan, args.database_url)
    print(markdown(report))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
