"""What an eval produces: each case's runs and verdict, as a table, JSON or JUnit XML.

`EvalReport.to_dict()` is `agent-runtime eval --json`; `junit_xml()` is `--junit PATH` (one
`testcase` per case, a `failure` with the reason for each that failed), `render_table` the table
printed in a terminal. Model text in them is data: shown, never obeyed (`text.visible`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any, Literal

from agent_runtime.evals.load import EvalCase
from agent_runtime.text import one_line, valid_unicode_json

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["CaseResult", "EvalReport", "SampleResult", "render_table"]

Outcome = Literal["passed", "failed", "diverged", "error"]
"""How one run ended: met the expectations, missed one, left its cassette, or did not finish."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleResult:
    """One run of a case.

    Attributes:
        outcome: `passed`, `failed` (an expectation), `diverged` (from the cassette) or
            `error` (the run did not finish).
        why: the reason in one line (None when it passed).
        turns: model calls of the run (None when it did not finish).
        tokens: input plus output tokens of the run (None when it did not finish).
        duration_s: wall-clock time of the run.
        final_output: the answer (None when the run did not finish).
        tool_calls: the run's tool calls, as (name, parsed arguments), in order.
    """

    outcome: Outcome
    why: str | None = None
    turns: int | None = None
    tokens: int | None = None
    duration_s: float = 0.0
    final_output: Any = None
    tool_calls: tuple[tuple[str, Any], ...] = ()

    @property
    def passed(self) -> bool:
        """Whether the run met every expectation."""
        return self.outcome == "passed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the run."""
        from pydantic_core import to_jsonable_python

        return {
            "outcome": self.outcome,
            "why": self.why,
            "turns": self.turns,
            "tokens": self.tokens,
            "duration_s": round(self.duration_s, 3),
            "final_output": valid_unicode_json(to_jsonable_python(self.final_output, fallback=str)),
            "tool_calls": [
                {"name": name, "arguments": valid_unicode_json(arguments)}
                for name, arguments in self.tool_calls
            ],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """A case and its runs: it passes when at least `pass_rate` of its runs passed."""

    case: EvalCase
    samples: tuple[SampleResult, ...]

    @property
    def passes(self) -> int:
        """How many runs passed."""
        return sum(sample.passed for sample in self.samples)

    @property
    def passed(self) -> bool:
        """Whether enough runs passed (`pass_rate` of them, rounded up; at least one run)."""
        needed = math.ceil(self.case.pass_rate * len(self.samples) - 1e-9)
        return bool(self.samples) and self.passes >= needed

    @property
    def why(self) -> str | None:
        """Why the case failed, in one line: the first failed run's reason, with the count of
        passed runs when there were several (None when it passed)."""
        if self.passed:
            return None
        first = next((s.why for s in self.samples if not s.passed), None) or "no run"
        if len(self.samples) == 1:
            return first
        return (
            f"{self.passes}/{len(self.samples)} runs passed, {self.case.pass_rate:.0%} needed; "
            f"first failure: {first}"
        )

    @property
    def turns(self) -> float | None:
        """Mean model calls of the runs that finished."""
        turns = [s.turns for s in self.samples if s.turns is not None]
        return sum(turns) / len(turns) if turns else None

    @property
    def tokens(self) -> int | None:
        """Tokens of all runs together."""
        tokens = [s.tokens for s in self.samples if s.tokens is not None]
        return sum(tokens) if tokens else None

    @property
    def duration_s(self) -> float:
        """Time of all runs together."""
        return sum(s.duration_s for s in self.samples)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the case's verdict, totals and runs."""
        return {
            "file": self.case.file,
            "name": self.case.name,
            "agent": self.case.agent,
            "passed": self.passed,
            "why": self.why,
            "runs": len(self.samples),
            "passes": self.passes,
            "pass_rate": self.case.pass_rate,
            "turns": _number(self.turns),
            "tokens": self.tokens,
            "duration_s": round(self.duration_s, 3),
            "samples": [sample.to_dict() for sample in self.samples],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalReport:
    """The cases of one eval, in file order, and how long it took."""

    cases: tuple[CaseResult, ...]
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether every case passed."""
        return all(case.passed for case in self.cases)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        """The cases that failed."""
        return tuple(case for case in self.cases if not case.passed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (`agent-runtime eval --json`): `passed`, counts, the cases."""
        return {
            "passed": self.passed,
            "cases_total": len(self.cases),
            "cases_passed": len(self.cases) - len(self.failed),
            "cases_failed": len(self.failed),
            "duration_s": round(self.duration_s, 3),
            "cases": [case.to_dict() for case in self.cases],
        }

    def junit_xml(self) -> str:
        """The report as JUnit XML: a `testsuite` per eval file, a `testcase` per case, a
        `failure` (message: the reason; type: how the first failed run ended) per failed case."""
        root = ET.Element("testsuites", name="agent-runtime eval")
        _counts(root, self.cases)
        for file, group in groupby(self.cases, key=lambda c: c.case.file):
            cases = list(group)
            suite = ET.SubElement(root, "testsuite", name=file)
            _counts(suite, cases)
            for result in cases:
                testcase = ET.SubElement(
                    suite,
                    "testcase",
                    classname=file,
                    name=result.case.name,
                    time=f"{result.duration_s:.3f}",
                )
                if not result.passed:
                    kind = next((s.outcome for s in result.samples if not s.passed), "failed")
                    failure = ET.SubElement(
                        testcase, "failure", message=_xml_text(result.why or ""), type=kind
                    )
                    failure.text = _xml_text(
                        "\n".join(
                            f"run {number}: {sample.outcome}: {sample.why or ''}".rstrip(": ")
                            for number, sample in enumerate(result.samples, 1)
                        )
                    )
        ET.indent(root)
        body = ET.tostring(root, encoding="unicode")
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _number(value: float | None) -> float | int | None:
    """A mean as written: 2 rather than 2.0, 2.5 as it is."""
    if value is not None and value.is_integer():
        return int(value)
    return value


def _counts(element: ET.Element, cases: Sequence[CaseResult]) -> None:
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(not case.passed for case in cases)))
    element.set("errors", "0")
    element.set("time", f"{sum(case.duration_s for case in cases):.3f}")


def _xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold (controls other than tab and newline,
    lone surrogates), each shown as `\\xNN` instead."""
    return "".join(
        char
        if char in "\t\n\r"
        or (" " <= char < "\ud800")
        or ("\ue000" <= char <= "\ufffd")
        or char >= "\U00010000"
        else f"\\x{ord(char):02x}"
        for char in text
    )


def render_table(report: EvalReport, console: Console) -> None:
    """Print the report as a table (case, result, why, turns, tokens, time) and a summary."""
    from rich.table import Table
    from rich.text import Text

    several_files = len({case.case.file for case in report.cases}) > 1
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("case", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("why", overflow="fold", ratio=1)
    table.add_column("turns", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for result in report.cases:
        runs = f" {result.passes}/{len(result.samples)}" if len(result.samples) > 1 else ""
        verdict = Text(
            ("pass" if result.passed else "FAIL") + runs,
            style="green" if result.passed else "bold red",
        )
        turns = _number(result.turns)
        table.add_row(
            Text(result.case.id if several_files else result.case.name),
            verdict,
            Text(one_line(result.why or "", 400)),
            "-" if turns is None else f"{turns:.1f}" if isinstance(turns, float) else str(turns),
            "-" if result.tokens is None else f"{result.tokens:,}",
            f"{result.duration_s:.1f}s",
        )
    console.print(table)
    failed = len(report.failed)
    summary = Text(
        f"{len(report.cases) - failed} passed, {failed} failed in {report.duration_s:.1f}s",
        style="red" if failed else "green",
    )
    console.print(summary)
