"""`agent-runtime logs [RUN_ID]`: the runs in the run log, and one run's timeline.

Without RUN_ID it lists recent runs, newest first; with one (a trace id, a run id, or the start
of one) it shows what the run did, rendered as a live run is: reasoning, tool calls with their
arguments and results, handoffs, retries, errors, with the time each model and tool call took.
`--prune` removes old runs (and old sessions when `sessions.keep_days` is set).
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from agent_runtime.cli.common import (
    EXIT_USAGE,
    Secrets,
    config_option,
    configure_logging,
    debug_option,
    exit_with,
    handle_errors,
    load,
)
from agent_runtime.cli.continuing import stored_sessions
from agent_runtime.cli.render import PlainRenderer, TerminalRenderer
from agent_runtime.config import Config
from agent_runtime.results import (
    Handoff,
    Message,
    ReasoningDelta,
    Retrying,
    RunEvent,
    TextDelta,
    ToolCall,
    ToolResult,
)
from agent_runtime.runlog import (
    SQLITE_SUFFIXES,
    LoggedRun,
    RunLog,
    RunNotFoundError,
    is_run_log,
)
from agent_runtime.text import one_line, visible

__all__ = ["NOT_RECORDED", "duration_text", "logs_command", "short_id", "timeline"]

NOT_RECORDED = "(not recorded: set tracing.include_sensitive_data: true)"
"""Shown where a run's content was left out of its trace."""

INPUT_LIMIT = 50
"""How much of a run's input the list shows."""


@click.command(name="logs")
@click.argument("reference", metavar="[RUN_ID]", required=False)
@click.option(
    "-n",
    "--count",
    "limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    metavar="N",
    help="How many runs to list.",
)
@click.option("--agent", metavar="NAME", help="Only runs of this agent.")
@click.option("--session", metavar="ID", help="Only runs of this session.")
@click.option("--search", metavar="TEXT", help="Only runs whose input or answer holds TEXT.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead.")
@click.option(
    "--cassette",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Write the run RUN_ID as a mock script (replay it with `agent-runtime mock --script`).",
)
@click.option("--prune", is_flag=True, help="Remove runs older than `tracing.keep_days`.")
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0, min_open=True),
    metavar="N",
    help="With --prune: keep the runs of the last N days instead.",
)
@config_option
@debug_option
def logs_command(
    reference: str | None,
    limit: int,
    agent: str | None,
    session: str | None,
    search: str | None,
    as_json: bool,
    cassette: Path | None,
    prune: bool,
    keep_days: float | None,
    config_path: Path,
    debug: bool,
) -> None:
    """List recent runs, or show the run RUN_ID (a trace id, or its start).

    Runs are read from the run log, `tracing.path` in agents.yaml (by default
    .agent-runtime/runs.sqlite3 next to it). Prompts, arguments and outputs are there only
    when `tracing.include_sensitive_data` is true.

    \b
    Examples:
      agent-runtime logs -n 5 --agent weather-haiku
      agent-runtime logs 1a2b3c4d
      agent-runtime logs --prune --keep-days 7
    """
    secrets = Secrets()
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets):
        _check_usage(reference, cassette, prune, keep_days, as_json)
        config = load(config_path, import_tools=False, secrets=secrets)
        log = RunLog(_log_path(config))
        try:
            if prune:
                _prune(config, log, keep_days)
            elif reference is None:
                _list(log, limit=limit, agent=agent, session=session, search=search, json_=as_json)
            else:
                _show(log, reference, json_=as_json, cassette=cassette)
        finally:
            log.close()


def _check_usage(
    reference: str | None,
    cassette: Path | None,
    prune: bool,
    keep_days: float | None,
    as_json: bool,
) -> None:
    if keep_days is not None and not prune:
        exit_with(
            EXIT_USAGE, "--keep-days goes with --prune: agent-runtime logs --prune --keep-days N"
        )
    if prune and reference is not None:
        exit_with(EXIT_USAGE, "--prune removes old runs, not one run: leave out RUN_ID.")
    if cassette is not None and reference is None:
        exit_with(
            EXIT_USAGE, "--cassette writes one run: give its RUN_ID (see `agent-runtime logs`)."
        )
    if cassette is not None and as_json:
        exit_with(EXIT_USAGE, "--cassette writes a file; leave out --json.")


def _log_path(config: Config) -> Path:
    tracing = config.spec.tracing
    path = config.resolve_path(tracing.path)
    if not is_run_log(path):
        exit_with(
            EXIT_USAGE,
            f"`tracing.path` in {config.source} is {tracing.path!r}, a JSON-lines file, which "
            f"`logs` does not read: set it to a run log (a name ending in "
            f"{', '.join(SQLITE_SUFFIXES)}; the default is .agent-runtime/runs.sqlite3).",
        )
    return path


# -- the list -----------------------------------------------------------------------------------


def _when(seconds: float) -> str:
    """A time as local date and time, to the second."""
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def duration_text(ms: float | None) -> str:
    """A duration as the listing shows it (`812 ms`, `1.2 s`, `2 min 5 s`)."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)} min {ms % 60_000 / 1000:.0f} s"


def short_id(trace_id: str) -> str:
    """The first 8 hex digits of a trace id, which `logs RUN_ID` takes."""
    return trace_id.removeprefix("trace_")[:8]


def _list(
    log: RunLog,
    *,
    limit: int,
    agent: str | None,
    session: str | None,
    search: str | None,
    json_: bool,
) -> None:
    if not log.path.is_file():
        if json_:
            click.echo("[]")
        else:
            click.echo(f"No runs logged yet in {log.path}.")
        return
    runs = log.runs(limit=limit, agent=agent, session=session, search=search)
    if json_:
        click.echo(json.dumps([run.to_dict() for run in runs], indent=2, ensure_ascii=False))
        return
    if not runs:
        click.echo("No runs match." if agent or session or search else "No runs logged yet.")
        return
    rows = [("TIME", "RUN", "AGENT", "OUTCOME", "TURNS", "TOKENS", "DURATION", "INPUT")]
    missing = False
    for run in runs:
        if run.input is None:
            missing = True
        rows.append(
            (
                _when(run.started_at),
                short_id(run.trace_id),
                one_line(run.agent, 30, note=False),
                run.outcome or "unfinished",
                "-" if run.turns is None else str(run.turns),
                "-" if run.tokens is None else str(run.tokens),
                duration_text(run.duration_ms),
                "(not recorded)"
                if run.input is None
                else one_line(run.input, INPUT_LIMIT, note=False),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    right = {4, 5, 6}
    for row in rows:
        cells = [
            cell.rjust(widths[index]) if index in right else cell.ljust(widths[index])
            for index, cell in enumerate(row)
        ]
        click.echo("  ".join(cells).rstrip())
    if missing:
        click.echo(f"Input {NOT_RECORDED}")


# -- one run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Note:
    """A line of the timeline that is not an event of a live run (timings, errors)."""

    text: str
    style: str = "dim"


def _show(log: RunLog, reference: str, *, json_: bool, cassette: Path | None) -> None:
    try:
        run = log.find(reference)
    except RunNotFoundError as error:  # a wrong RUN_ID: a usage error
        exit_with(EXIT_USAGE, str(error))
    records = log.records(run.trace_id)
    if cassette is not None:
        _write_cassette(run, records, cassette)
        return
    if json_:
        click.echo(
            json.dumps({"run": run.to_dict(), "records": records}, indent=2, ensure_ascii=False)
        )
        return
    _render(run, records)


def _write_cassette(run: LoggedRun, records: Sequence[Mapping[str, Any]], path: Path) -> None:
    from agent_runtime.testing.cassette import save_cassette, script_from_records

    try:
        entries = script_from_records(records)
    except ValueError as error:
        exit_with(EXIT_USAGE, str(error))
    if not entries:
        exit_with(EXIT_USAGE, f"run {run.trace_id} has no model call to write as a cassette.")
    try:
        save_cassette(entries, path)
    except OSError as error:
        exit_with(EXIT_USAGE, f"cannot write the cassette {path}: {error.strerror or error}.")
    click.echo(
        f"Wrote {len(entries)} model call{'s' if len(entries) != 1 else ''} of run "
        f"{run.trace_id} to {path}."
    )


def _header(run: LoggedRun) -> Iterator[str]:
    session = f" (session {visible(run.session, lines=False)})" if run.session else ""
    yield f"Run {run.trace_id} of agent {visible(run.agent, lines=False)}{session}"
    parts = [f"started {_when(run.started_at)}"]
    if run.outcome is None:
        parts.append("no end recorded")
    else:
        parts.append(f"{run.outcome} after {duration_text(run.duration_ms)}")
    if run.turns is not None:
        parts.append(f"{run.turns} turn{'s' if run.turns != 1 else ''}")
    if run.tokens is not None:
        parts.append(f"{run.tokens} tokens ({run.input_tokens} in, {run.output_tokens} out)")
    yield ", ".join(parts).capitalize()
    text = run.input if run.input is not None else NOT_RECORDED
    yield f"Input: {visible(text)}"


def timeline(records: Sequence[Mapping[str, Any]]) -> Iterator[RunEvent | _Note]:
    """The events a live run of these records showed, with notes of timings and errors."""
    traced_calls = {r.get("call_id") for r in records if r.get("type") == "tool_call"}
    handed_off = any(r.get("type") == "handoff" for r in records)
    for record in records:
        kind = record.get("type")
        agent = str(record.get("agent") or "")
        if kind == "model_call":
            yield _Note(_model_note(record))
            output = record.get("output")
            if not isinstance(output, list):
                yield _Note(f"  output {NOT_RECORDED}")
                continue
            for item in output:
                if isinstance(item, Mapping):
                    yield from _item_events(item, agent, traced_calls, handed_off)
        elif kind == "tool_call":
            name = str(record.get("name") or "")
            call_id = str(record.get("call_id") or "")
            arguments = record.get("arguments")
            output = record.get("output")
            yield ToolCall(
                agent=agent,
                name=name,
                arguments=NOT_RECORDED if arguments is None else str(arguments),
                call_id=call_id,
            )
            yield ToolResult(
                agent=agent,
                name=name,
                call_id=call_id,
                output=NOT_RECORDED if output is None else str(output),
            )
            yield _Note(f"  {name} ran {duration_text(_number(record.get('duration_ms')))}")
        elif kind == "handoff":
            yield Handoff(agent=agent, to_agent=str(record.get("to_agent") or ""))
        elif kind == "retry":
            attempt = record.get("attempt")
            yield Retrying(
                agent=agent,
                attempt=attempt if isinstance(attempt, int) else 0,
                cause=str(record.get("cause") or ""),
            )
        elif kind == "output_retry":
            attempt = record.get("attempt")
            problems = record.get("problems")
            yield Retrying(
                agent=agent,
                attempt=attempt if isinstance(attempt, int) else 0,
                cause="the answer does not match the output_schema"
                + (f": {problems}" if problems else ""),
            )
        elif kind == "run_end":
            if record.get("error"):
                yield _Note(f"Error: {record.get('error')}", "red")
        elif kind not in ("run_start",):
            yield _Note(_other_note(record), "yellow")


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _model_note(record: Mapping[str, Any]) -> str:
    usage = record.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    tokens = f"{usage.get('input_tokens', '?')} in, {usage.get('output_tokens', '?')} out"
    took = duration_text(_number(record.get("duration_ms")))
    return f"· model call of {record.get('agent')}: {took}, {tokens} tokens"


def _other_note(record: Mapping[str, Any]) -> str:
    skip = {"trace_id", "type", "time", "agent"}
    fields = ", ".join(f"{key}={value}" for key, value in record.items() if key not in skip)
    return f"· {record.get('type')}: {fields}"


def _item_events(
    item: Mapping[str, Any], agent: str, traced_calls: set[Any], handed_off: bool
) -> Iterator[RunEvent]:
    kind = item.get("type")
    if kind == "reasoning":
        text = "".join(
            str(part.get("text", ""))
            for part in item.get("content") or item.get("summary") or []
            if isinstance(part, Mapping)
        )
        if text:
            yield ReasoningDelta(agent=agent, text=text)
    elif kind == "message":
        text = "".join(
            str(part.get("text", ""))
            for part in item.get("content") or []
            if isinstance(part, Mapping) and part.get("type") == "output_text"
        )
        if text:
            yield Message(agent=agent, text=text)
    elif kind == "function_call" and item.get("call_id") not in traced_calls:
        name = str(item.get("name") or "")
        if handed_off and name.startswith("transfer_to_"):
            return  # shown by its handoff record
        # A call that did not run here (a client tool, one awaiting approval, the run ended).
        yield ToolCall(
            agent=agent,
            name=name,
            arguments=str(item.get("arguments") or ""),
            call_id=str(item.get("call_id") or ""),
        )


class _Replay(TerminalRenderer):
    """The live renderer without its spinner: a logged run waits for nothing."""

    def waiting(self) -> None:
        """Nothing to wait for."""


def _render(run: LoggedRun, records: Sequence[Mapping[str, Any]]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console()
    if console.is_terminal:
        renderer = _Replay(console, show_reasoning=True)
        for line in _header(run):
            console.print(Text(line, style="bold"))
        for event in timeline(records):
            if isinstance(event, _Note):
                renderer.close()
                console.print(Text(visible(event.text), style=event.style))
            elif isinstance(event, Message):
                renderer.event(TextDelta(agent=event.agent, text=event.text))
            else:
                renderer.event(event)
        renderer.close()
        return
    out = sys.stdout
    plain = PlainRenderer(out, show_reasoning=True, show_tools=True)

    def write(line: str) -> None:
        click.echo(line, file=out)

    for line in _header(run):
        write(line)
    for event in timeline(records):
        if isinstance(event, _Note):
            write(visible(event.text))
        elif isinstance(event, Message):
            write(f"[answer] {visible(event.text)}")
        elif isinstance(event, ReasoningDelta):
            write(f"[reasoning] {visible(event.text)}")
        else:
            plain.event(event)
    sys.stdout.flush()


# -- pruning ------------------------------------------------------------------------------------


def _prune(config: Config, log: RunLog, keep_days: float | None) -> None:
    days = keep_days if keep_days is not None else config.spec.tracing.keep_days
    if days is None:
        exit_with(
            EXIT_USAGE,
            "`tracing.keep_days` is null (runs are kept forever): pass --keep-days N to remove "
            "runs older than N days.",
        )
    if log.path.is_file():
        pruned = log.prune(days)
        click.echo(
            f"Removed {pruned.runs} run{'s' if pruned.runs != 1 else ''} "
            f"({pruned.records} record{'s' if pruned.records != 1 else ''}) started before "
            f"{_when(pruned.before)} from {log.path}."
        )
    else:
        click.echo(f"No runs logged yet in {log.path}.")
    session_days = config.spec.sessions.keep_days
    if session_days is None:
        return
    store, where = stored_sessions(config)
    if store is None:
        return
    try:
        removed = store.prune_sync(session_days)
    finally:
        store.close()
    names = f": {', '.join(visible(name, lines=False) for name in removed)}" if removed else ""
    click.echo(
        f"Removed {len(removed)} session{'s' if len(removed) != 1 else ''} not used for "
        f"{session_days:g} days from {where}{names}."
    )
