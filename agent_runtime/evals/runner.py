"""Running eval cases: each run of each case against its model, in parallel, bounded.

A case with a cassette (`mock:`) replays it on a `MockVLLM` of its own: a request that is not
what was recorded fails the run with the difference. With `mock=True`, cases without one are
answered by the automatic test model (`MockVLLM(auto=True)`). Otherwise the agent's backend
answers (or `base_url`); with `record=True`, through a `Recorder` that writes the case's cassette.

```python
report = await run_evals(["evals/weather.yaml"], "agents.yaml", concurrency=4)
print(report.passed, [case.why for case in report.failed])
```
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent_runtime.config import Config, load_config
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.evals.expect import first_failure
from agent_runtime.evals.load import EvalCase, EvalFile, load_eval_file
from agent_runtime.evals.report import CaseResult, EvalReport, SampleResult
from agent_runtime.redact import own_logger
from agent_runtime.testing import MockVLLM, Recorder
from agent_runtime.text import one_line

if TYPE_CHECKING:
    from agent_runtime.results import RunResult

__all__ = ["DEFAULT_CONCURRENCY", "run_evals", "select_cases"]

logger = own_logger(__name__)

DEFAULT_CONCURRENCY = 4
"""Runs at once unless told otherwise: a few, so a real server is not flooded."""

_WHY_CHARS = 300
"""The longest reason shown for a run."""


def select_cases(files: Sequence[EvalFile], pattern: str | None) -> list[EvalCase]:
    """The cases of `files` whose name (or `file::name`) matches `pattern`: a glob when it has
    `*`, `?` or `[`, else a part of the name (case-insensitive); every case without one."""
    cases = [case for file in files for case in file.cases]
    if pattern is None:
        return cases
    glob = pattern if any(char in pattern for char in "*?[") else f"*{pattern}*"
    return [
        case
        for case in cases
        if fnmatch.fnmatch(case.name.lower(), glob.lower())
        or fnmatch.fnmatch(case.id.lower(), glob.lower())
    ]


async def run_evals(
    evals: Sequence[EvalFile | str | Path],
    config: Config | str | Path,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    mock: bool = False,
    record: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    select: str | None = None,
    trace_path: str | Path | bool | None = None,
) -> EvalReport:
    """Run every case of `evals` (each `repeat` times) and check it.

    Args:
        evals: eval files, loaded (`load_eval_file`) or as paths.
        config: the agents.yaml the cases run against, loaded or as a path.
        base_url: send every backend's requests here instead (not for cassettes replayed).
        model: use this model name on every backend instead.
        api_key: use this API key on every backend.
        mock: answer cases without a cassette with the automatic test model, offline.
        record: run cases with a cassette against the model server and write what it answered
            to the cassette (once per case, `repeat` aside), instead of replaying it.
        concurrency: runs at once, over all cases.
        select: run only the cases that match (see `select_cases`).
        trace_path: where the runs' trace goes (default: agents.yaml's `tracing.path`);
            `False` writes none.

    Raises:
        ConfigError: agents.yaml or an eval file given as a path has problems.
        ValueError: `concurrency` is less than 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, not {concurrency}")
    if not isinstance(config, Config):
        config = load_config(config)
    files = [
        item if isinstance(item, EvalFile) else load_eval_file(item, config=config, record=record)
        for item in evals
    ]
    cases = select_cases(files, select)
    runner = _Runner(
        config,
        base_url=base_url,
        model=model,
        api_key=api_key,
        mock=mock,
        record=record,
        trace_path=trace_path,
        limit=asyncio.Semaphore(concurrency),
    )
    started = time.monotonic()
    results = await asyncio.gather(*(runner.case(case) for case in cases))
    return EvalReport(cases=tuple(results), duration_s=time.monotonic() - started)


class _Runner:
    """Runs cases with the settings of one `run_evals` call."""

    def __init__(
        self,
        config: Config,
        *,
        base_url: str | None,
        model: str | None,
        api_key: str | None,
        mock: bool,
        record: bool,
        trace_path: str | Path | bool | None,
        limit: asyncio.Semaphore,
    ) -> None:
        self.config = config
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.mock = mock
        self.record = record
        self.trace_path = trace_path
        self.limit = limit

    async def case(self, case: EvalCase) -> CaseResult:
        """Every run of `case`; a cassette being recorded is recorded once."""
        runs = 1 if self.record and case.cassette is not None else case.repeat
        samples = await asyncio.gather(*(self._limited(case) for _ in range(runs)))
        return CaseResult(case=case, samples=tuple(samples))

    async def _limited(self, case: EvalCase) -> SampleResult:
        async with self.limit:
            return await self.sample(case)

    async def sample(self, case: EvalCase) -> SampleResult:
        """One run of `case`, checked."""
        if case.cassette is not None and self.record:
            return await self._recorded(case, case.cassette)
        if case.cassette is not None:
            async with MockVLLM(list(case.script)) as server:
                sample = await self._run(case, server.url)
                return _replayed(sample, server, case)
        if self.mock:
            async with MockVLLM(auto=True) as server:
                return await self._run(case, server.url)
        return await self._run(case, self.base_url)

    async def _recorded(self, case: EvalCase, cassette: Path) -> SampleResult:
        _, backend = self.config.backend_of(case.agent)
        upstream = self.base_url or (backend.urls[0] if backend.urls else None)
        if upstream is None:
            return SampleResult(
                outcome="error",
                why=f"cannot record: the backend of {case.agent!r} has no base_url; give "
                "--base-url",
            )
        key = self.api_key or backend.api_key.get_secret_value()
        async with Recorder(upstream, api_key=key) as recorder:
            sample = await self._run(case, recorder.url)
            if sample.outcome != "error":
                cassette.parent.mkdir(parents=True, exist_ok=True)
                recorder.save(cassette)
        return sample

    async def _run(self, case: EvalCase, base_url: str | None) -> SampleResult:
        """Run the case's agent on its input with the backend at `base_url`, and check it."""
        from agent_runtime.runtime import Runtime

        started = time.monotonic()
        try:
            async with Runtime(
                self.config,
                base_url=base_url,
                model=self.model,
                api_key=self.api_key,
                trace_path=self.trace_path,
            ) as runtime:
                result = await runtime.run(case.agent, case.input)
        except AgentRuntimeError as exc:
            return _error(str(exc), started)
        except Exception as exc:  # a bug, or what a tool let out: this run fails, the rest go on
            logger.debug("eval case %s failed", case.id, exc_info=True)
            return _error(f"{type(exc).__name__}: {exc}", started)
        return self._checked(case, result, time.monotonic() - started)

    def _checked(self, case: EvalCase, result: RunResult, duration_s: float) -> SampleResult:
        spec = self.config.spec.agents[case.agent].output_schema
        why = first_failure(
            case.expect,
            result,
            agent_schema=spec if isinstance(spec, dict) else None,
            agent_type=self.config.output_types.get(case.agent),
        )
        return SampleResult(
            outcome="passed" if why is None else "failed",
            why=why,
            turns=result.turns,
            tokens=result.usage.total_tokens,
            duration_s=duration_s,
            final_output=result.final_output,
            tool_calls=tuple((call.name, call.parsed_arguments) for call in result.tool_calls),
        )


def _error(message: str, started: float) -> SampleResult:
    return SampleResult(
        outcome="error",
        why=one_line(message, _WHY_CHARS, note=False),
        duration_s=time.monotonic() - started,
    )


def _replayed(sample: SampleResult, server: MockVLLM, case: EvalCase) -> SampleResult:
    """`sample` as a divergence when the run left its cassette: it asked something else, asked
    more than the cassette holds, or ended before using all of it."""
    name = case.cassette.name if case.cassette is not None else "cassette"
    why: str | None = None
    if server.divergences:
        why = f"diverged from {name}: {server.divergences[0]}"
    elif len(server.model_requests) > len(case.script):
        why = (
            f"diverged from {name}: the run made more model calls than the "
            f"{len(case.script)} it holds"
        )
    elif sample.outcome != "error" and server.remaining:
        used = len(case.script) - server.remaining
        why = f"diverged from {name}: the run ended after {used} of its {len(case.script)} replies"
    if why is None:
        return sample
    return dataclasses.replace(
        sample, outcome="diverged", why=one_line(why, _WHY_CHARS, note=False)
    )
