"""Benchmark local tracing: what the trace costs a run, what one record costs, and how fast
`agent-runtime logs` reads a large run log.

    uv run python scripts/bench_tracing.py              # full run, under 3 minutes
    uv run python scripts/bench_tracing.py --quick      # CI-sized, under 40 s
    uv run python scripts/bench_tracing.py --markdown   # also print the BENCHMARKS.md section

The model is the mock vLLM as a process of its own, as a model server is
(`python -m agent_runtime.testing --tool-loop --loop-steps 1` on 127.0.0.1, a free port), zero
latency, serving
scripts/bench_project/agents.yaml's weather-haiku agent: 2 model calls and 1 tool call per run,
5 trace records (`run_start`, `model_call`, `tool_call`, `model_call`, `run_end`).

1. per run: `Runtime.run` one run at a time with tracing off (`trace_path=False`), to JSON
   lines (`trace_path=….jsonl`) and to the SQLite run log (`trace_path=runs.sqlite3`), each
   with `tracing.include_sensitive_data` false and true (a copy of agents.yaml). One runtime
   per way; the ways take turns run by run (round-robin, the first one changing every round)
   so that all meet the machine at the same speed; what a way adds is the median of its
   per-round differences against tracing off. CPU: this process's.
2. per record: `TraceWriter.write` of a `model_call` record of that run (with and without its
   sensitive fields) to a JSON-lines file and to a run log, in batches that take turns; and
   `TraceWriter.encode` alone (masking secrets, cutting long text, JSON), the part both share.
3. `agent-runtime logs` on a run log of N runs (5 records each, as the runs of part 1 wrote
   them, input and answer recorded) filled with `RunLog.add`, the run log's writer API, over
   60 days: listing, searching and showing one run through the library calls the command
   makes (a new `RunLog` each time, as each command opens one), once each through the real
   command in a subprocess, then `RunLog.prune` of the older half (what `logs --prune` does).

Exit status: 0, or 1 when a run answered wrongly or a trace, listing or prune was not what it
should be (speed targets never fail it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH_PROJECT = ROOT / "scripts" / "bench_project"
sys.path.insert(0, str(BENCH_PROJECT))

import bench_mock  # noqa: E402
from harness import PROMPT, check_output, median, spread  # noqa: E402
from report import Section, Table, Verdict, section_markdown, section_text  # noqa: E402

from agent_runtime import Runtime, load_config  # noqa: E402
from agent_runtime.cli.logs import short_id, timeline  # noqa: E402
from agent_runtime.runlog import LoggedRun, RunLog  # noqa: E402
from agent_runtime.tracing import TraceWriter, new_trace_id  # noqa: E402

AGENT = "weather-haiku"
AGENT_RUNTIME = str(Path(sys.executable).parent / "agent-runtime")
PACKAGES = ("openai", "openai-agents", "httpx2", "uvicorn")
RECORDS_PER_RUN = 5
ADDED_TARGET_S = 0.001  # the run log, per run, against tracing off
LIST_TARGET_S = 0.100  # newest 20 runs of TARGET_RUNS
SHOW_TARGET_S = 0.100  # one run's timeline among TARGET_RUNS
TARGET_RUNS = 100_000
SPAN_DAYS = 60.0  # the filled run log's runs started over this many days...
PRUNE_DAYS = 30.0  # ...so that pruning at this many days removes half of them
TOWNS = 100  # inputs name one of this many towns: a search for one matches 1 run in 100
FOUND = "Town 042"
NOWHERE = "Atlantis"
CLI_TIMEOUT_S = 120.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How much to run."""

    quick: bool
    warmup: int  # runs of each way before the rounds
    rounds: int  # timed runs of each way, one per round
    batches: int  # per record: batches of each way
    batch: int  # records per batch
    log_runs: int  # runs in the filled run log
    repeats: int  # calls of each `logs` query through the library

    @classmethod
    def for_run(cls, *, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True, warmup=5, rounds=60, batches=6, batch=200, log_runs=2_000, repeats=5
            )
        return cls(
            quick=False,
            warmup=20,
            rounds=250,
            batches=12,
            batch=500,
            log_runs=TARGET_RUNS,
            repeats=15,
        )


def ms(seconds: float, digits: int = 2) -> str:
    return f"{seconds * 1000:,.{digits}f}"


def signed_ms(seconds: float) -> str:
    return f"{seconds * 1000:+.2f}"


def file_bytes(path: Path) -> int:
    """A file's size with its SQLite write-ahead log, if any."""
    wal = path.with_name(path.name + "-wal")
    return sum(p.stat().st_size for p in (path, wal) if p.is_file())


# -- 1. per run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Way:
    """One way of tracing a run, with its own runtime."""

    trace: Literal["off", "jsonl", "sqlite"]
    sensitive: bool
    path: Path | None = None
    runtime: Runtime | None = None
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return {"off": "off", "jsonl": "JSON lines", "sqlite": "run log (SQLite)"}[self.trace]


def project_copy(folder: Path, *, sensitive: bool) -> Path:
    """scripts/bench_project/agents.yaml with `tracing.include_sensitive_data` set."""
    document = yaml.safe_load((BENCH_PROJECT / "agents.yaml").read_text(encoding="utf-8"))
    document.setdefault("tracing", {})["include_sensitive_data"] = sensitive
    path = folder / f"agents-{'sensitive' if sensitive else 'plain'}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


async def one_run(way: Way, section: Section) -> tuple[float, float] | None:
    """One run of `way`: its wall and CPU seconds; None (an error noted) when it failed."""
    assert way.runtime is not None
    cpu = time.process_time()
    started = time.perf_counter()
    try:
        result = await way.runtime.run(AGENT, PROMPT)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        check_output(result.final_output)
    except Exception as exc:
        section.errors[f"{way.label}: {type(exc).__name__}: {str(exc)[:120]}"] += 1
        return None
    way.trace_ids.append(result.trace_id)
    return wall, cpu


def check_jsonl(way: Way, section: Section) -> list[dict[str, Any]]:
    """The records of a JSON-lines way, noting an error when they are not those of its runs."""
    assert way.path is not None
    records = [json.loads(line) for line in way.path.read_text(encoding="utf-8").splitlines()]
    expected = [tid for tid in way.trace_ids for _ in range(RECORDS_PER_RUN)]
    if [r.get("trace_id") for r in records] != expected:
        section.errors[f"{way.label}: the file does not hold {RECORDS_PER_RUN} records a run"] += 1
    outputs = [r.get("output") for r in records if r.get("type") == "model_call"]
    if any((output is not None) != way.sensitive for output in outputs):
        section.errors[f"{way.label}: model outputs recorded against the setting"] += 1
    return records


def check_run_log(way: Way, section: Section) -> None:
    assert way.path is not None
    log = RunLog(way.path)
    try:
        runs = log.runs(limit=len(way.trace_ids) + 1)
        records = log.records(way.trace_ids[-1])
    finally:
        log.close()
    expected_input = PROMPT if way.sensitive else None
    if sorted(r.trace_id for r in runs) != sorted(way.trace_ids):
        section.errors[f"{way.label}: the run log does not hold the runs made"] += 1
    elif any(r.outcome != "completed" or r.input != expected_input for r in runs):
        section.errors[f"{way.label}: a logged run's outcome or input is wrong"] += 1
    if len(records) != RECORDS_PER_RUN:
        section.errors[f"{way.label}: a run has {len(records)} records"] += 1


async def per_run(plan: Plan, folder: Path, section: Section) -> list[list[dict[str, Any]]]:
    """Part 1; returns one run's records from the plain and the sensitive JSON-lines files."""
    ways = [
        Way(trace=trace, sensitive=sensitive)
        for trace in ("off", "jsonl", "sqlite")
        for sensitive in (False, True)
    ]
    yamls = {s: project_copy(folder, sensitive=s) for s in (False, True)}
    async with contextlib.AsyncExitStack() as stack:
        mock = stack.enter_context(bench_mock.MockProcess(["--loop-steps", "1"]))
        environ = {"MOCK_URL": mock.url, "BENCH_STATE_DIR": str(folder / "state")}
        for number, way in enumerate(ways):
            suffix = {"off": "", "jsonl": ".jsonl", "sqlite": ".sqlite3"}[way.trace]
            way.path = folder / f"way-{number}{suffix}" if suffix else None
            way.runtime = await stack.enter_async_context(
                Runtime(
                    load_config(yamls[way.sensitive], environ=environ),
                    trace_path=way.path if way.path is not None else False,
                )
            )
        for _ in range(plan.warmup):
            for way in ways:
                await one_run(way, section)
        gc.collect()
        for index in range(plan.rounds):
            first = index % len(ways)
            timed = [(way, await one_run(way, section)) for way in ways[first:] + ways[:first]]
            if any(figures is None for _, figures in timed):
                continue  # a round with an error is left out: its pairs are incomplete
            for way, figures in timed:
                assert figures is not None
                way.walls.append(figures[0])
                way.cpus.append(figures[1])
    # The runtimes are closed: their files are complete (a run log's WAL folded in).
    samples: list[list[dict[str, Any]]] = []
    for way in ways:
        if way.trace == "jsonl":
            samples.append(check_jsonl(way, section)[-RECORDS_PER_RUN:])
        elif way.trace == "sqlite":
            check_run_log(way, section)
    report_per_run(plan, ways, section)
    return samples


def report_per_run(plan: Plan, ways: Sequence[Way], section: Section) -> None:
    off = ways[0]
    rows = []
    added: dict[tuple[str, bool], float] = {}
    for way in ways:
        if not way.walls:
            continue
        runs = len(way.trace_ids)
        size = f"{file_bytes(way.path) / runs:,.0f}" if way.path is not None and runs else "-"
        if way is off:
            adds = cpu_adds = "-"
        else:
            wall_diff = median([a - b for a, b in zip(way.walls, off.walls, strict=True)])
            cpu_diff = median([a - b for a, b in zip(way.cpus, off.cpus, strict=True)])
            added[way.trace, way.sensitive] = wall_diff
            adds, cpu_adds = signed_ms(wall_diff), signed_ms(cpu_diff)
        rows.append(
            [
                way.label,
                "yes" if way.sensitive else "no",
                str(len(way.walls)),
                ms(median(way.walls)),
                ms(min(way.walls)),
                adds,
                ms(median(way.cpus)),
                cpu_adds,
                size,
            ]
        )
    section.tables.append(
        Table(
            caption="1. `Runtime.run`, one run at a time (2 model calls + 1 tool call, zero mock "
            "latency):",
            header=[
                "trace",
                "sensitive data",
                "runs",
                "median ms",
                "min ms",
                "adds ms",
                "CPU ms/run",
                "CPU adds ms",
                "bytes/run",
            ],
            rows=rows,
        )
    )
    section.notes.append(
        f"{plan.rounds} rounds after {plan.warmup} warm-up runs of each way; in each round every "
        "way makes one run, in turn, the first way changing every round. 'adds': the median of "
        "the per-round differences against tracing off (the first row). The second 'off' row "
        "is the same thing again with the other agents.yaml copy: its difference is the noise "
        "floor of this measure. CPU: this process's (the mock runs in a process of its own). "
        "bytes/run: the trace file's size over the runs it holds."
    )
    worst = max(added.get(("sqlite", False), 0.0), added.get(("sqlite", True), 0.0))
    measured = ("sqlite", False) in added and ("sqlite", True) in added
    section.verdicts.append(
        Verdict(
            target=f"the SQLite run log adds ≤ {ADDED_TARGET_S * 1000:g} ms to a run against "
            "tracing off (median difference)",
            holds=worst <= ADDED_TARGET_S if measured else None,
            detail=f"It adds {ms(added.get(('sqlite', False), float('nan')))} ms without "
            f"sensitive data and {ms(added.get(('sqlite', True), float('nan')))} ms with it "
            f"({RECORDS_PER_RUN} records a run).",
        )
    )


# -- 2. per record -------------------------------------------------------------------------------


@dataclass(slots=True)
class RecordWay:
    label: str
    sensitive: bool
    template: dict[str, Any]
    call: Callable[[dict[str, Any]], object]
    per_record: list[float] = field(default_factory=list)  # wall seconds, one per batch
    cpu: list[float] = field(default_factory=list)


def model_call_of(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    for record in records:
        if record.get("type") == "model_call":
            return record
    raise RuntimeError("the traced run has no model_call record")


def per_record(
    plan: Plan, folder: Path, samples: Sequence[Sequence[dict[str, Any]]], section: Section
) -> None:
    plain, sensitive = model_call_of(samples[0]), model_call_of(samples[1])
    if plain.get("output") is not None or sensitive.get("output") is None:
        raise RuntimeError("the sample records do not differ by their sensitive fields")
    encoder = TraceWriter(None)
    writers: list[TraceWriter] = []
    ways: list[RecordWay] = []
    for name, suffix in (("JSON lines", ".jsonl"), ("run log (SQLite)", ".sqlite3")):
        for flag, template in ((False, plain), (True, sensitive)):
            writer = TraceWriter(folder / f"records-{len(writers)}{suffix}", keep_days=None)
            writers.append(writer)
            ways.append(RecordWay(name, flag, template, writer.write))
    for flag, template in ((False, plain), (True, sensitive)):
        ways.append(RecordWay("encoding only", flag, template, encoder.encode))
    trace_ids = [new_trace_id() for _ in range(plan.batch * plan.batches)]
    try:
        for index in range(plan.batches):
            first = index % len(ways)
            for way in ways[first:] + ways[:first]:
                ids = trace_ids[index * plan.batch : (index + 1) * plan.batch]
                template, call = way.template, way.call
                cpu = time.process_time()
                started = time.perf_counter()
                for number in range(len(ids)):
                    # A run's records share a trace id, as in a run: 5 in a row.
                    call(
                        {
                            **template,
                            "trace_id": ids[number - number % RECORDS_PER_RUN],
                            "time": time.time(),
                        }
                    )
                way.per_record.append((time.perf_counter() - started) / len(ids))
                way.cpu.append((time.process_time() - cpu) / len(ids))
    finally:
        for writer in writers:
            writer.close()
    for writer in writers:
        if writer.failed:
            section.errors[f"the trace writer of {writer.path} failed"] += 1
    rows = [
        [
            way.label,
            "yes" if way.sensitive else "no",
            f"{len(encoder.encode(way.template)):,}",
            str(len(way.per_record) * plan.batch),
            f"{median(way.per_record) * 1e6:.0f}",
            f"{min(way.per_record) * 1e6:.0f}",
            f"{median(way.cpu) * 1e6:.0f}",
        ]
        for way in ways
    ]
    section.tables.append(
        Table(
            caption="2. `TraceWriter.write` of one `model_call` record:",
            header=[
                "to",
                "sensitive data",
                "bytes",
                "records",
                "µs/record",
                "min µs",
                "CPU µs/record",
            ],
            rows=rows,
        )
    )
    section.notes.append(
        f"Batches of {plan.batch} records taking turns ({plan.batches} batches a way); "
        "µs/record: the median of the batches' means, 'min': the fastest batch's. A run log "
        "writes each record as a transaction of its own (WAL, `synchronous=NORMAL`: no fsync); "
        "a JSON-lines file gets one `write` and a `flush` per record. 'encoding only': "
        "`TraceWriter.encode` — masking the secrets, cutting long text and making the JSON, "
        "which both writers do first."
    )


# -- 3. agent-runtime logs -----------------------------------------------------------------------


def town_input(number: int) -> str:
    return f"What's the weather in Town {number % TOWNS:03d}?"


def fill_log(
    path: Path, runs: int, sample: Sequence[dict[str, Any]], now: float
) -> tuple[float, list[str]]:
    """Write `runs` runs shaped like `sample` (one run's records, as its writer wrote them)
    with `RunLog.add`, their starts spread over the last `SPAN_DAYS` days: the seconds it took
    and their trace ids, oldest first."""
    rng = random.Random(0)
    step = SPAN_DAYS * 86_400 / runs
    base = now - SPAN_DAYS * 86_400
    t0 = sample[0]["time"]
    log = RunLog(path)
    try:
        trace_ids: list[str] = []
        started = time.perf_counter()
        for number in range(runs):
            trace_id = f"trace_{rng.getrandbits(128):032x}"
            trace_ids.append(trace_id)
            start = base + (number + 0.5) * step  # no run exactly at the prune's cut
            for template in sample:
                record = dict(template)
                record["trace_id"] = trace_id
                record["time"] = start + (template["time"] - t0)
                if isinstance(template.get("started_at"), float):
                    record["started_at"] = start + (template["started_at"] - t0)
                if template["type"] == "run_start":
                    record["input"] = [{"role": "user", "content": town_input(number)}]
                log.add(record, json.dumps(record, ensure_ascii=False))
        return time.perf_counter() - started, trace_ids
    finally:
        log.close()


def timed_calls(path: Path, call: Callable[[RunLog], T], repeats: int) -> tuple[list[float], T]:
    """`call` on a new `RunLog` of `path` (opened and closed as a command does) `repeats`
    times: the seconds of each, and the last answer."""
    walls: list[float] = []
    answer: T | None = None
    gc.collect()  # not a collection of the earlier parts' garbage in the middle of a call
    for _ in range(repeats):
        started = time.perf_counter()
        log = RunLog(path)
        try:
            answer = call(log)
        finally:
            log.close()
        walls.append(time.perf_counter() - started)
    assert answer is not None
    return walls, answer


def show(log: RunLog, reference: str) -> tuple[LoggedRun, list[dict[str, Any]], int]:
    """What `logs RUN_ID` reads and renders: the run, its records, its timeline's length."""
    run = log.find(reference)
    records = log.records(run.trace_id)
    return run, records, len(list(timeline(records)))


def cli(folder: Path, *arguments: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """`agent-runtime ARGUMENTS` in a subprocess: its wall time and result."""
    started = time.perf_counter()
    done = subprocess.run(
        [AGENT_RUNTIME, *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    return time.perf_counter() - started, done


def logs_speed(
    plan: Plan, folder: Path, sample: Sequence[dict[str, Any]], section: Section
) -> None:
    n = plan.log_runs
    document = yaml.safe_load((BENCH_PROJECT / "agents.yaml").read_text(encoding="utf-8"))
    document["tracing"] = {"path": "runs.sqlite3", "include_sensitive_data": True}
    config = folder / "agents.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    path = folder / "runs.sqlite3"
    now = time.time()
    print(f"  filling a run log with {n:,} runs", file=sys.stderr, flush=True)
    filled_s, trace_ids = fill_log(path, n, sample, now)
    print(f"  filled in {filled_s:.1f} s", file=sys.stderr, flush=True)
    size = file_bytes(path)
    records = n * RECORDS_PER_RUN

    def wrong(what: str) -> None:
        section.errors[f"logs: {what}"] += 1

    rows: list[list[str]] = []
    repeats = plan.repeats

    listed_s, newest = timed_calls(path, lambda log: log.runs(limit=20), repeats)
    if len(newest) != 20 or newest[0].input != town_input(n - 1):
        wrong("the newest 20 runs are not the last 20 written")
    elif [r.started_at for r in newest] != sorted((r.started_at for r in newest), reverse=True):
        wrong("the runs are not listed newest first")
    list_cli_s, listed = cli(folder, "logs", "-n", "20", "-c", str(config))
    if listed.returncode != 0 or len(listed.stdout.splitlines()) != 21:
        wrong(f"`logs -n 20` exited {listed.returncode}: {listed.stderr.strip()[-200:]}")
    elif short_id(newest[0].trace_id) not in listed.stdout.splitlines()[1]:
        wrong("`logs -n 20` does not list the newest run first")
    rows.append(["`logs -n 20`", "20 runs", spread(listed_s, 1000, 1), ms(list_cli_s, 0)])

    found_s, found = timed_calls(path, lambda log: log.runs(limit=20, search=FOUND), repeats)
    holding = min(20, len(range(int(FOUND.split()[1]), n, TOWNS)))  # runs whose input has it
    if len(found) != holding or any(FOUND not in (r.input or "") for r in found):
        wrong(f"--search {FOUND!r} found {len(found)} runs, not {holding}")
    search_cli_s, searched = cli(folder, "logs", "--search", FOUND, "-c", str(config))
    if searched.returncode != 0 or searched.stdout.count(FOUND) != holding:
        wrong(f"`logs --search` exited {searched.returncode}: {searched.stderr.strip()[-200:]}")
    rows.append(
        [
            f"`logs --search '{FOUND}'` (1 run in {TOWNS})",
            f"{holding} runs",
            spread(found_s, 1000, 1),
            ms(search_cli_s, 0),
        ]
    )

    none_s, none = timed_calls(path, lambda log: log.runs(limit=20, search=NOWHERE), repeats)
    if none:
        wrong(f"--search {NOWHERE!r} found runs")
    rows.append([f"`logs --search {NOWHERE}` (in no run)", "0 runs", spread(none_s, 1000, 1), ""])

    chosen = trace_ids[n // 3]  # an old run: the index takes it as fast as a new one
    shown: dict[str, list[float]] = {}
    for label, reference in (
        ("the whole trace id", chosen),
        ("its first 8 hex digits", short_id(chosen)),
    ):
        walls, (run, run_records, events) = timed_calls(
            path, functools.partial(show, reference=reference), repeats
        )
        shown[label] = walls
        if run.trace_id != chosen or len(run_records) != RECORDS_PER_RUN or events < 5:
            wrong(f"`logs {reference}` showed {run.trace_id} with {len(run_records)} records")
        rows.append(
            [f"`logs RUN_ID` ({label})", f"{len(run_records)} records", spread(walls, 1000, 1), ""]
        )
    show_cli_s, showed = cli(folder, "logs", short_id(chosen), "-c", str(config))
    if showed.returncode != 0 or not showed.stdout.startswith(f"Run {chosen} of agent {AGENT}"):
        wrong(f"`logs ID` exited {showed.returncode}: {showed.stderr.strip()[-200:]}")
    rows[-1][3] = ms(show_cli_s, 0)
    floor_s, version = cli(folder, "--version")
    if version.returncode != 0:
        wrong(f"`--version` exited {version.returncode}")
    rows.append(["`agent-runtime --version` (start-up floor)", "", "", ms(floor_s, 0)])

    log = RunLog(path)
    try:
        started = time.perf_counter()
        pruned = log.prune(PRUNE_DAYS, now=now)
        prune_s = time.perf_counter() - started
    finally:
        log.close()
    if pruned.runs != n // 2 or pruned.records != n // 2 * RECORDS_PER_RUN:
        wrong(f"prune removed {pruned.runs} runs ({pruned.records} records), not {n // 2}")
    rows.append(
        [
            f"`logs --prune` (the older half, {PRUNE_DAYS:g} days)",
            f"{pruned.runs:,} runs",
            ms(prune_s, 0),
            "",
        ]
    )
    section.tables.append(
        Table(
            caption=f"3. `agent-runtime logs` on a run log of {n:,} runs ({records:,} records, "
            f"{size / 2**20:,.0f} MiB, {size / n:,.0f} bytes a run):",
            header=["command", "answer", "library ms, median (min-max)", "CLI ms (once)"],
            rows=rows,
        )
    )
    section.notes.append(
        f"The run log was filled with `RunLog.add` (the storage the trace writer calls after "
        f"masking; masking each record again would add the 'encoding only' time of table 2) "
        f"in {filled_s:.1f} s ({filled_s / records * 1e6:.0f} µs a record): {n:,} runs shaped "
        f"like one of part 1 (sensitive data recorded), random trace ids, inputs naming one of "
        f"{TOWNS} towns, starts spread over {SPAN_DAYS:g} days. Library: the calls `logs` makes "
        f"({repeats} times each, a new `RunLog` each time): `RunLog.runs` for a list or search, "
        "`RunLog.find` + `RunLog.records` + `timeline` for one run. CLI: the command in a "
        "subprocess, once, Python's start-up and imports included. Prune: `RunLog.prune`, "
        "as `logs --prune` calls it, deleting and then vacuuming incrementally, "
        f"{size / 2**20:,.0f} MiB → {file_bytes(path) / 2**20:,.0f} MiB."
    )
    full = n >= TARGET_RUNS
    scale = "" if full else f" (measured on {n:,} runs only: --quick)"
    section.verdicts.append(
        Verdict(
            target=f"listing the newest 20 runs of {TARGET_RUNS:,} takes ≤ "
            f"{LIST_TARGET_S * 1000:g} ms",
            holds=median(listed_s) <= LIST_TARGET_S if full else None,
            detail=f"{ms(median(listed_s), 1)} ms through the library, {ms(list_cli_s, 0)} ms "
            f"through the command{scale}.",
        )
    )
    worst = max(median(walls) for walls in shown.values())
    section.verdicts.append(
        Verdict(
            target=f"one run's timeline among {TARGET_RUNS:,} runs takes ≤ "
            f"{SHOW_TARGET_S * 1000:g} ms",
            holds=worst <= SHOW_TARGET_S if full else None,
            detail="Through the library "
            + " and ".join(f"{ms(median(w), 1)} ms by {label}" for label, w in shown.items())
            + f"; {ms(show_cli_s, 0)} ms through the command{scale}.",
        )
    )


# -- entry point ---------------------------------------------------------------------------------


def measure(plan: Plan) -> Section:
    section = Section(
        title="Local tracing",
        setup=(
            "The weather-haiku agent of scripts/bench_project/agents.yaml (2 model calls + 1 "
            "tool call, 5 trace records a run) against the mock vLLM in a process of its own (zero "
            "latency): what tracing adds to `Runtime.run`, what one record costs the trace "
            "writer, and how fast `agent-runtime logs` reads a run log of "
            f"{plan.log_runs:,} runs."
        ),
    )
    with tempfile.TemporaryDirectory(prefix="agent-runtime-bench-tracing-") as temporary:
        folder = Path(temporary)
        print("[per run]", file=sys.stderr, flush=True)
        samples = asyncio.run(per_run(plan, folder, section))
        if len(samples) != 2 or any(len(s) != RECORDS_PER_RUN for s in samples):
            raise RuntimeError("the JSON-lines ways did not record a whole run")
        print("[per record]", file=sys.stderr, flush=True)
        per_record(plan, folder, samples, section)
        print("[logs]", file=sys.stderr, flush=True)
        (folder / "logs").mkdir()
        logs_speed(plan, folder / "logs", samples[1], section)
    return section


def machine_lines(command: str) -> list[str]:
    lines = bench_mock.machine_lines(PACKAGES)
    lines[-1] += f"; SQLite {sqlite3.sqlite_version}"
    return [f"Reproduce: `{command}`", *lines]


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark local tracing and `logs`.")
    parser.add_argument("--quick", action="store_true", help="a CI-sized run")
    parser.add_argument(
        "--markdown", action="store_true", help="also print the BENCHMARKS.md section"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # the temporary folder is removed on SIGTERM too
    command = "uv run python scripts/bench_tracing.py" + (" --quick" if args.quick else "")
    print("\n".join(machine_lines(command)) + "\n", flush=True)
    started = time.perf_counter()
    try:
        section = measure(Plan.for_run(quick=args.quick))
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, sqlite3.Error, subprocess.TimeoutExpired) as exc:
        print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(section_text(section))
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    if args.markdown:
        print("\n## Local tracing (`scripts/bench_tracing.py`)\n")
        print("\n".join(f"- {line}" for line in machine_lines(command)) + "\n")
        print(section_markdown(section).split("\n", 2)[2])  # without its own title
    for error, count in section.errors.most_common(5):
        print(f"{count} x {error}", file=sys.stderr)
    return 1 if section.errors else 0


if __name__ == "__main__":
    sys.exit(main())
