"""Soak: 200 concurrent runs on one `Runtime` through random faults, then nothing left behind.

The mock vLLM server answers each model call with a random fault (503, 429, 500, a dropped
connection, a cut stream, an empty incomplete answer, a delay, an answer later than `timeout_s`)
or with the next step of a one-tool loop. Every run must end with its own correct answer or a
clean `AgentRuntimeError`; afterwards the process must hold no more asyncio tasks, threads,
sockets or file descriptors than before (measured in /proc/self/fd).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runtime import AgentRuntimeError, RunFinished, Runtime
from agent_runtime.testing import Fault, MockVLLM, RecordedRequest, Reply, call, fault
from tests import helpers

SOAK = helpers.PROJECT / "soak.yaml"
RUNS = 200
SEED = 20261122
FAULT_RATE = 0.3  # of model calls; with 3 retries a call fails for good about once in 120


# -- the model: a one-tool loop, with random faults ----------------------------------------------


def _city(request: RecordedRequest) -> str:
    match = re.search(r"City-\d+", " ".join(request.user_texts))
    assert match is not None, request.user_texts
    return match.group(0)


def expected_answer(city: str) -> str:
    """The answer of a run about `city`: its own tool result, quoted (see `FlakyToolLoop`)."""
    weather = json.dumps({"city": city, "condition": "sunny", "temperature_c": 21})
    return f"{city}: {weather}"


@dataclass
class FlakyToolLoop:
    """Per model call: a random fault, else the next step of a loop of one tool call.

    Stateless apart from the seeded generator (as `ToolLoop`): the step comes from the tool
    results already in the request, so any number of runs interleave freely. Called on the
    mock's server thread only.
    """

    rng: random.Random
    served: Counter[str] = field(default_factory=Counter)

    def __call__(self, request: RecordedRequest) -> Reply:
        city = _city(request)
        outputs = request.function_outputs
        if outputs:
            step = Reply(reasoning="I have it; answer.", final=f"{city}: {outputs[-1].output}")
        else:
            step = Reply(reasoning=f"Look up {city}.", calls=(call("get_weather", city=city),))
        if self.rng.random() >= FAULT_RATE:
            self.served["step"] += 1
            return step
        kind, make = self.rng.choice(FAULTS)
        self.served[kind] += 1
        return make(self.rng, step)


def _with(step: Reply, extra: Fault) -> Reply:
    return Reply(reasoning=step.reasoning, calls=step.calls, final=step.final, fault=extra)


FAULTS: list[tuple[str, Callable[[random.Random, Reply], Reply]]] = [
    ("503", lambda rng, step: fault(status=503)),
    ("429", lambda rng, step: fault(status=429)),
    ("500", lambda rng, step: fault(status=500)),
    ("drop", lambda rng, step: fault(drop_connection=True)),
    ("cut", lambda rng, step: _with(step, Fault(cut_stream=rng.randint(0, 6)))),
    ("empty", lambda rng, step: fault(empty_incomplete=True)),
    ("delay", lambda rng, step: _with(step, Fault(delay_s=rng.uniform(0.01, 0.3)))),
    ("late", lambda rng, step: _with(step, Fault(delay_s=7))),  # past timeout_s (5 s)
]


# -- measuring what the process holds -------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the process holds: threads by name, and file descriptors by kind."""

    threads: tuple[str, ...]
    fds: dict[str, int]

    def without_executor(self) -> Held:
        """Without the event loop's default executor, whose idle workers stay until the loop
        closes (the session store and the mock's start and stop use it)."""
        threads = tuple(t for t in self.threads if not t.startswith("asyncio_"))
        return Held(threads=threads, fds=self.fds)

    def __str__(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.fds.items()))
        return f"{len(self.threads)} threads {list(self.threads)}; fds: {kinds}"


def held() -> Held:
    kinds: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            continue
        kind = target.partition(":")[0] if target.endswith("]") else "file"
        kinds[kind] += 1
    threads = tuple(sorted(t.name for t in threading.enumerate()))
    return Held(threads=threads, fds=dict(kinds))


def beyond(now: Held, baseline: Held) -> dict[str, Any]:
    """What `now` holds beyond `baseline`: new threads, and more descriptors of a kind.

    Holding less is no leak: starting uvicorn (the mock) closes the process's logging handlers,
    which under `pytest -s` closes a descriptor pytest opened.
    """
    extra: dict[str, Any] = {}
    threads = Counter(now.threads) - Counter(baseline.threads)
    if threads:
        extra["threads"] = sorted(threads.elements())
    for kind, count in now.fds.items():
        if count > baseline.fds.get(kind, 0):
            extra[kind] = count - baseline.fds.get(kind, 0)
    return extra


def settle(baseline: Held, view: Callable[[Held], Held] = lambda h: h) -> Held:
    """What the process holds once it is no more than `baseline`, or after 10 s.

    Sockets close in the server's thread and threads end on their own: there is no event to
    wait on, so this polls.
    """
    deadline = time.monotonic() + 10
    while True:
        now = view(held())
        if not beyond(now, baseline) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


async def settle_tasks() -> set[asyncio.Task[Any]]:
    """The tasks other than this one once none is left, or after 10 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if not others or loop.time() > deadline:
            return others
        await asyncio.sleep(0.05)


# -- the soak --------------------------------------------------------------------------------------


@dataclass
class Soak:
    """What came of the runs, and what was left once the runtime was closed."""

    correct: int = 0
    clean_errors: Counter[str] = field(default_factory=Counter)
    error_messages: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    wrong_answers: list[str] = field(default_factory=list)
    loop_start: Held | None = None
    loop_end: Held | None = None
    tasks_left: set[asyncio.Task[Any]] = field(default_factory=set)
    peak: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


async def one_run(runtime: Runtime, index: int) -> str:
    city = f"City-{index:03d}"
    prompt = f"What's the weather in {city}?"
    session = f"soak-{index}" if index % 10 == 0 else None
    if index % 3 == 0:
        events = [event async for event in runtime.stream("soak", prompt, session=session)]
        finished = events[-1]
        assert isinstance(finished, RunFinished)
        answer = finished.result.final_output
    else:
        answer = (await runtime.run("soak", prompt, session=session)).final_output
    assert isinstance(answer, str)
    return answer


async def sample(peak: Counter[str]) -> None:
    """Keep the most threads and descriptors of each kind seen (shows what the runs hold)."""
    while True:
        now = held()
        peak["threads"] = max(peak["threads"], len(now.threads))
        for kind, count in now.fds.items():
            peak[kind] = max(peak[kind], count)
        await asyncio.sleep(0.1)


async def soak(mock: MockVLLM, state: Path) -> Soak:
    outcome = Soak(loop_start=held().without_executor())
    started = time.monotonic()
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(state)}
    sampler = asyncio.create_task(sample(outcome.peak))
    async with Runtime.from_yaml(SOAK, environ=environ) as runtime:
        async with asyncio.timeout(120):
            results = await asyncio.gather(
                *(one_run(runtime, i) for i in range(RUNS)), return_exceptions=True
            )
    outcome.seconds = time.monotonic() - started
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    for index, result in enumerate(results):
        if isinstance(result, AgentRuntimeError):
            outcome.clean_errors[type(result).__name__] += 1
            outcome.error_messages[re.sub(r"\d+", "N", str(result))] += 1
        elif isinstance(result, BaseException):
            outcome.unexpected.append(f"run {index}: {type(result).__name__}: {result}")
        elif result == expected_answer(f"City-{index:03d}"):
            outcome.correct += 1
        else:
            outcome.wrong_answers.append(f"run {index}: {result!r}")
    outcome.tasks_left = await settle_tasks()
    assert outcome.loop_start is not None
    outcome.loop_end = await asyncio.to_thread(settle, outcome.loop_start, Held.without_executor)
    return outcome


def test_soak_200_concurrent_runs_through_random_faults(tmp_path: Path) -> None:
    before = held()
    flaky = FlakyToolLoop(random.Random(SEED))
    mock = MockVLLM(default=flaky, keep_requests=100).start()
    try:
        serving = held()
        outcome = asyncio.run(soak(mock, tmp_path))
        after_runtime = settle(serving)
    finally:
        mock.stop()
    after = settle(before)

    print(
        f"\nsoak: {RUNS} runs in {outcome.seconds:.1f} s: {outcome.correct} correct, "
        f"clean errors {dict(outcome.clean_errors)}, unexpected {len(outcome.unexpected)}, "
        f"wrong answers {len(outcome.wrong_answers)}\n"
        f"model calls answered: {dict(flaky.served)}\n"
        f"errors: {outcome.error_messages.most_common(3)}\n"
        f"held before:                    {before}\n"
        f"held with the mock serving:     {serving}\n"
        f"in the loop, before the runs:   {outcome.loop_start}\n"
        f"at most, during the runs:       {dict(outcome.peak)}\n"
        f"in the loop, runtime closed:    {outcome.loop_end}; tasks left "
        f"{len(outcome.tasks_left)}\n"
        f"loop closed, mock serving:      {after_runtime}\n"
        f"mock stopped:                   {after}"
    )
    assert outcome.unexpected == []
    assert outcome.wrong_answers == []
    assert outcome.correct + sum(outcome.clean_errors.values()) == RUNS
    assert outcome.correct >= RUNS * 0.85
    # The faults really happened, and of every kind.
    assert sum(flaky.served.values()) - flaky.served["step"] >= RUNS * 0.5
    assert set(flaky.served) == {"step", *(kind for kind, _ in FAULTS)}
    # Every run was traced from start to end.
    records = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    kinds = Counter(record["type"] for record in records)
    assert kinds["run_start"] == kinds["run_end"] == RUNS
    assert kinds["retry"] > 0
    # Nothing left behind: no task, thread, socket or file.
    assert outcome.tasks_left == set()
    assert outcome.loop_start is not None and outcome.loop_end is not None
    assert beyond(outcome.loop_end, outcome.loop_start) == {}
    assert beyond(after_runtime, serving) == {}
    assert beyond(after, before) == {}
    # ... and the measure sees what it should: the mock's thread and sockets while it serves.
    assert beyond(serving, before)["threads"] == [f"MockVLLM:{mock.port}"]
    assert beyond(serving, before)["socket"] >= 1
    assert outcome.peak["socket"] > outcome.loop_start.fds["socket"] + 10
    assert outcome.peak["threads"] > len(outcome.loop_start.threads)
