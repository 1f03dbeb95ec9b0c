"""`agent-runtime eval FILE...`: run eval files' cases and say which pass."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent_runtime.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    Secrets,
    backend_options,
    config_option,
    configure_logging,
    debug_option,
    exit_with,
    handle_errors,
    load,
)
from agent_runtime.cli.signals import StopSignals
from agent_runtime.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from agent_runtime.config import Config
    from agent_runtime.evals import EvalFile, EvalReport

__all__ = ["eval_command"]

_LOG_WIDTH = 120
"""The table's width when stdout is not a terminal and `COLUMNS` is not set."""


@click.command(name="eval")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@config_option
@backend_options
@click.option(
    "--mock",
    is_flag=True,
    help="Answer cases without a cassette with the automatic test model (offline).",
)
@click.option(
    "--record",
    is_flag=True,
    help="Run cases with a cassette (`mock:`) against the model server and write the cassette.",
)
@click.option("-k", "pattern", metavar="PATTERN", help="Run only the cases whose name matches.")
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    metavar="N",
    help="Runs at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Also write the report as JUnit XML to PATH.",
)
@debug_option
def eval_command(
    files: tuple[Path, ...],
    config_path: Path,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    mock: bool,
    record: bool,
    pattern: str | None,
    concurrency: int,
    as_json: bool,
    junit: Path | None,
    debug: bool,
) -> None:
    """Run the cases of eval FILES and check what each run does.

    Each case runs its agent on its input (`repeat` times) and checks the tool calls, the
    handoffs, the answer. A case with a cassette (`mock:`) replays it, offline; `--mock`
    answers the others with the automatic test model; otherwise the agents' model server
    answers (or `--base-url`). Exit 0 when every case passes, 1 when one fails, 2 for a bad
    eval file or agents.yaml.

    \b
    Example:
      agent-runtime eval evals/weather.yaml --junit eval.xml
    """
    secrets = Secrets()
    secrets.add(api_key)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        if mock and record:
            exit_with(
                EXIT_USAGE,
                "--mock and --record do not go together: --record calls the model server to "
                "write cassettes, --mock keeps every case offline",
            )
        from agent_runtime.evals import run_evals, select_cases

        config = load(config_path, secrets=secrets)
        loaded = _load_all(files, config, record=record)
        if not select_cases(loaded, pattern):
            names = ", ".join(repr(case.name) for file in loaded for case in file.cases)
            exit_with(EXIT_USAGE, f"no case matches -k {pattern!r} (the cases: {names})")
        report = stop.run(
            run_evals(
                loaded,
                config,
                base_url=base_url,
                model=model,
                api_key=api_key,
                mock=mock,
                record=record,
                concurrency=concurrency,
                select=pattern,
            )
        )
        _show(report, as_json=as_json)
        if junit is not None:
            _write_junit(report, junit)
    sys.exit(0 if report.passed else EXIT_ERROR)


def _load_all(files: tuple[Path, ...], config: Config, *, record: bool) -> list[EvalFile]:
    """Every eval file, or one `ConfigError` with the problems of all of them."""
    from agent_runtime.evals import load_eval_file

    loaded: list[EvalFile] = []
    problems: list[ConfigProblem] = []
    for path in files:
        try:
            loaded.append(load_eval_file(path, config=config, record=record))
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    return loaded


def _show(report: EvalReport, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    from agent_runtime.evals import render_table

    # Logs (CI) are wider than the 80 columns rich assumes without a terminal.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    render_table(report, Console(highlight=False, width=_LOG_WIDTH if wide else None))


def _write_junit(report: EvalReport, path: Path) -> None:
    try:
        path.write_text(report.junit_xml(), encoding="utf-8")
    except OSError as exc:
        exit_with(EXIT_ERROR, f"cannot write the JUnit report to {path}: {exc.strerror}")
