"""The reporting side of scripts/bench.py: sections of tables and verdicts, as text or Markdown,
the machine's description, and a pyinstrument profile's top frames."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# scripts/ is on sys.path when scripts/bench.py runs.
import bench_mock

# -- report structure ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """Rows of cells under a header; the first column is text, the others figures."""

    header: Sequence[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Whether a target holds in this run, and the figures that say so."""

    target: str
    holds: bool | None  # None: not measured in this run
    detail: str
    timed: bool = True  # False: not a matter of speed, so `--check` holds the run to it

    @property
    def word(self) -> str:
        return {True: "holds", False: "MISSED", None: "not measured"}[self.holds]


@dataclass(slots=True, kw_only=True)
class Section:
    """One section of the report: what was measured, its tables, notes and verdicts."""

    title: str
    setup: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", *["---:"] * (len(header) - 1)]) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def section_text(section: Section) -> str:
    """The section for a terminal: aligned columns, wrapped paragraphs."""
    lines = [
        f"## {section.title}",
        textwrap.fill(section.setup, width=100, break_on_hyphens=False),
        "",
    ]
    for table in section.tables:
        if table.caption:
            lines.append(table.caption)
        lines += [*_columns([list(table.header), *table.rows]), ""]
    lines += [
        textwrap.fill(note, width=100, break_on_hyphens=False) + "\n" for note in section.notes
    ]
    lines += [f"Target: {v.target}: {v.word}. {v.detail}" for v in section.verdicts]
    return "\n".join(lines).rstrip() + "\n"


def section_markdown(section: Section) -> str:
    """The section for BENCHMARKS.md."""
    lines = [f"### {section.title}", "", section.setup, ""]
    for table in section.tables:
        if table.caption:
            lines += [table.caption, ""]
        lines += [*_markdown_table(table.header, table.rows), ""]
    lines += [note + "\n" for note in section.notes]
    lines += [f"- Target: {v.target}: **{v.word}**. {v.detail}" for v in section.verdicts]
    return "\n".join(lines).rstrip() + "\n"


# -- profiles ------------------------------------------------------------------------------------


IDLE = frozenset({"epoll.poll", "select.poll", "select.select", "select.epoll.poll"})


def top_frames(root: Any, count: int) -> str:
    """The functions with the most time: own (self) and inclusive (once per stack), as shares
    of the time the process was not idle in the event loop's poll."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()

    def name(frame: Any) -> str:
        path = str(frame.file_path_short or frame.file_path or "?")
        return f"{frame.function} ({path}:{frame.line_no})"

    def package(frame: Any, parent: str) -> str:
        path = str(frame.file_path or "")
        if not path or path.startswith("<"):
            return parent  # a built-in: its caller's
        parts = Path(path).parts
        if "site-packages" in parts:
            return parts[parts.index("site-packages") + 1].removesuffix(".py")
        if "agent_runtime" in parts:
            return "agent_runtime"
        if Path(path).parent.name == "asyncio" or "asyncio" in parts:
            return "asyncio"
        return "stdlib" if "python3" in path else Path(path).name

    def walk(frame: Any, above: frozenset[str], parent: str) -> None:
        key, where = name(frame), package(frame, parent)
        if frame.function in IDLE:
            own["(idle: waiting on the mock)"] += frame.time
            return
        # pyinstrument's synthetic children ([self], [await], ...) are the frame's own time.
        children = [c for c in frame.children if not str(c.function).startswith("[")]
        self_time = frame.time - sum(c.time for c in children)
        own[key] += self_time
        packages[where] += self_time
        if key not in above:
            inclusive[key] += frame.time
        for child in children:
            walk(child, above | {key}, where)

    walk(root, frozenset(), "stdlib")
    idle = own.pop("(idle: waiting on the mock)", 0.0)
    busy = max(root.time - idle, 1e-9)
    skip = ("asyncio/", "bench.py", "harness.py", "threading.py", "<frozen")
    lines = [
        f"sampled {root.time:.2f} s: {idle / root.time:.0%} idle in the event loop's poll; "
        "shares below are of the remaining (busy) time",
        "",
        "self time by package (built-ins counted with their caller):",
        *(f"  {t / busy:6.1%}  {k}" for k, t in packages.most_common(12)),
        "",
        "self time:",
        *(f"  {t / busy:6.1%}  {k}" for k, t in own.most_common(count)),
        "",
        "agent_runtime's own functions, inclusive:",
        *(
            f"  {t / busy:6.1%}  {k}"
            for k, t in [(k, t) for k, t in inclusive.most_common() if "agent_runtime/" in k][
                :count
            ]
        ),
        "",
        "inclusive time (asyncio, threading and this script left out):",
        *(
            f"  {t / busy:6.1%}  {k}"
            for k, t in [
                (k, t) for k, t in inclusive.most_common() if not any(x in k for x in skip)
            ][:count]
        ),
    ]
    return "\n".join(lines)


# -- the machine ---------------------------------------------------------------------------------


def machine_lines(command: str) -> list[str]:
    return [
        f"Reproduce: `{command}`",
        *bench_mock.machine_lines(("openai", "openai-agents", "httpx", "httpx2", "uvicorn")),
    ]
