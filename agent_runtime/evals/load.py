"""Loading eval files: parse with positions, validate, cross-check, and report every problem.

```python
evals = load_eval_file("evals/weather.yaml", config=load_config("agents.yaml"))
for case in evals.cases:
    print(case.name, case.agent, case.repeat)
```

Problems carry `file:line:col` and the dotted path of the value, as agents.yaml's do
(`agent_runtime.config.document` and `problems` place them); with a `Config`, agent names are
checked against it, and `output_schema: true` against the agent's own schema.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent_runtime.config import Config
from agent_runtime.config.document import Document, Loc, compose
from agent_runtime.config.problems import report_validation_error
from agent_runtime.errors import ConfigError, ConfigProblem
from agent_runtime.evals.spec import CaseSpec, EvalFileSpec, ExpectSpec
from agent_runtime.testing.script import ScriptEntry, ScriptError, load_script
from agent_runtime.text import kind_of, unknown

__all__ = ["MAX_EVAL_FILE_BYTES", "EvalCase", "EvalFile", "load_eval_file", "parse_eval_file"]

MAX_EVAL_FILE_BYTES = 4 * 1024 * 1024
"""The largest eval file `load_eval_file` reads (4 MiB)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalCase:
    """One case of an eval file, its defaults filled in.

    Attributes:
        file: the eval file's name as given.
        name: the case's name, unique in its file.
        agent: the agent to run.
        input: the user's message.
        expect: what the run must do.
        cassette: the cassette to replay (absolute), or None to call a model server.
        script: the cassette's entries, read when the file was loaded (empty without one, or
            when it is yet to be recorded).
        repeat: runs of the case.
        pass_rate: share of the runs that must pass.
    """

    file: str
    name: str
    agent: str
    input: str
    expect: ExpectSpec
    cassette: Path | None = None
    script: tuple[ScriptEntry, ...] = ()
    repeat: int = 1
    pass_rate: float = 1.0

    @property
    def id(self) -> str:
        """`file::name`, the case's name across files."""
        return f"{self.file}::{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalFile:
    """A loaded, checked eval file.

    Attributes:
        source: the file name as given.
        spec: the validated document.
        cases: its cases, defaults filled in, in file order.
    """

    source: str
    spec: EvalFileSpec
    cases: tuple[EvalCase, ...]


def load_eval_file(
    path: str | Path,
    *,
    config: Config | None = None,
    record: bool = False,
    environ: Mapping[str, str] | None = None,
) -> EvalFile:
    """Load and check an eval file; cassette paths start at its folder.

    Args:
        path: the YAML file.
        config: the agents.yaml the cases run against: agent names, and `output_schema: true`,
            are checked against it (not checked without it).
        record: the cassettes are to be written (`--record`): they need not exist yet.
        environ: variables for `${VAR}` interpolation (default: `os.environ`).

    Raises:
        ConfigError: the file cannot be read, or has problems; every problem is listed.
    """
    source = str(path)
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_EVAL_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([_file_problem(source, f"cannot read {source}: {reason}")]) from None
    if len(data) > MAX_EVAL_FILE_BYTES:
        message = f"cannot read {source}: it is larger than 4 MiB, the most an eval file may be"
        raise ConfigError([_file_problem(source, message)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"cannot read {source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError([_file_problem(source, message)]) from None
    return parse_eval_file(
        text,
        source=source,
        base_dir=Path(os.path.abspath(path)).parent,
        config=config,
        record=record,
        environ=environ,
    )


def parse_eval_file(
    text: str,
    *,
    source: str = "<eval>",
    base_dir: Path | None = None,
    config: Config | None = None,
    record: bool = False,
    environ: Mapping[str, str] | None = None,
) -> EvalFile:
    """Parse and check eval file text (see `load_eval_file`).

    Args:
        text: the YAML document.
        source: the file name to show in problems.
        base_dir: where cassette paths start (default: the current folder).
        config: the agents.yaml to check agent names against.
        record: the cassettes need not exist yet.
        environ: variables for `${VAR}` interpolation (default: `os.environ`).

    Raises:
        ConfigError: the document has problems; every problem is listed, sorted by position.
    """
    base = Path(os.path.abspath(base_dir if base_dir is not None else Path.cwd()))
    doc = compose(
        text,
        source=source,
        environ=os.environ if environ is None else environ,
        is_secret=lambda loc: False,
    )
    if not isinstance(doc.data, dict):
        if doc.data is None and not doc.problems:
            message = "the file is empty; expected a mapping with `cases` (and `agent`)"
        else:
            message = f"expected a mapping with `cases` (and `agent`), got {kind_of(doc.data)}"
        doc.report((), message)
        raise ConfigError(doc.problems, source=source)
    spec: EvalFileSpec | None = None
    try:
        spec = EvalFileSpec.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if not doc.is_tainted(loc):
                report_validation_error(
                    doc, loc, error, root=EvalFileSpec, is_secret=lambda loc: False
                )
    if spec is None or doc.problems:
        raise ConfigError(doc.problems, source=source)
    cases = _check(doc, spec, base=base, config=config, record=record)
    if doc.problems:
        raise ConfigError(doc.problems, source=source)
    return EvalFile(source=source, spec=spec, cases=tuple(cases))


def _check(
    doc: Document, spec: EvalFileSpec, *, base: Path, config: Config | None, record: bool
) -> list[EvalCase]:
    """The cases with their defaults; problems across fields are reported on `doc`."""
    agents: Mapping[str, Any] | None = config.spec.agents if config is not None else None
    if spec.agent is not None:
        _check_agent(doc, ("agent",), spec.agent, agents)
    cases: list[EvalCase] = []
    seen: dict[str, int] = {}
    for index, case in enumerate(spec.cases):
        loc: Loc = ("cases", index)
        if case.name in seen:
            first = doc.position(("cases", seen[case.name], "name"))
            line = f" (first at line {first.line})" if first else ""
            doc.report((*loc, "name"), f"duplicate case name {case.name!r}{line}")
        else:
            seen[case.name] = index
        agent = case.agent or spec.agent
        if agent is None:
            doc.report(
                loc,
                "no agent to run: give the case an `agent`, or the file one at its top "
                "(`agent: NAME`)",
                at="key",
            )
            continue
        if case.agent is not None and not _check_agent(doc, (*loc, "agent"), agent, agents):
            continue
        _check_expect(doc, (*loc, "expect"), case, agent, config)
        cassette, script = _cassette(doc, (*loc, "mock"), case, base, record=record)
        cases.append(
            EvalCase(
                file=doc.source,
                name=case.name,
                agent=agent,
                input=case.input,
                expect=case.expect,
                cassette=cassette,
                script=script,
                repeat=case.repeat if case.repeat is not None else spec.repeat,
                pass_rate=case.pass_rate if case.pass_rate is not None else spec.pass_rate,
            )
        )
    return cases


def _check_agent(doc: Document, loc: Loc, name: str, agents: Mapping[str, Any] | None) -> bool:
    if agents is None or name in agents:
        return True
    doc.report(loc, unknown("agent", name, agents))
    return False


def _check_expect(
    doc: Document, loc: Loc, case: CaseSpec, agent: str, config: Config | None
) -> None:
    expect = case.expect
    agents = config.spec.agents if config is not None else None
    if expect.agent is not None:
        _check_agent(doc, (*loc, "agent"), expect.agent, agents)
    for index, name in enumerate(expect.handoffs or ()):
        _check_agent(doc, (*loc, "handoffs", index), name, agents)
    schema = expect.output_schema
    if schema is True and agents is not None and agents[agent].output_schema is None:
        doc.report(
            (*loc, "output_schema"),
            f"the agent {agent!r} declares no `output_schema`; give the JSON Schema the answer "
            "must fit here instead of `true`",
        )
    elif isinstance(schema, dict):
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = "".join(f"[{part!r}]" for part in exc.path)
            doc.report((*loc, "output_schema"), f"not a valid JSON Schema: {exc.message}{where}")


def _cassette(
    doc: Document, loc: Loc, case: CaseSpec, base: Path, *, record: bool
) -> tuple[Path | None, tuple[ScriptEntry, ...]]:
    """The case's cassette (absolute) and its entries; none to read when recording."""
    if case.mock is None:
        return None, ()
    path = base / Path(case.mock).expanduser()
    if record:
        return path, ()
    if not path.is_file():
        doc.report(
            loc,
            f"no cassette at {path}: record it with `agent-runtime eval --record` against a "
            "model server, or fix the path (it starts at the eval file's folder)",
        )
        return path, ()
    try:
        script: Sequence[ScriptEntry] = load_script(path)
    except ScriptError as exc:
        reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        doc.report(loc, f"cannot replay the cassette: {reason}")
        return path, ()
    if not script:
        doc.report(loc, f"the cassette {path} is empty; record it with `--record`")
    return path, tuple(script)


def _file_problem(source: str, message: str) -> ConfigProblem:
    return ConfigProblem(file=source, line=None, column=None, path="", message=message)
