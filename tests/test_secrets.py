"""Secrets never shown: keys, header values and URL passwords planted in a configuration, runs
driven into failures, and every output searched for them: the error a library user gets, the
`Error:` line and `--debug` traceback of the CLI, the log lines and the trace file.

The property test runs in this process (fast enough for many examples); the CLI tests run the
real entry point in a subprocess for the main failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime import AgentRuntimeError, Runtime
from agent_runtime.cli.common import Secrets, handle_errors
from agent_runtime.config import load_config
from agent_runtime.redact import RedactFilter
from agent_runtime.testing import MockVLLM, RecordedRequest, Reply, call, fault
from tests.helpers import ROOT

CONFIG = """\
version: 1
backends:
  mock:
    base_url: ${URL}
    api_key: ${KEY}
    model: openai/gpt-oss-20b
    max_retries: 1
    retry_delay_s: 0
    headers: {X-Token: "${HEADER}"}
    serve_args: [--api-key, "${KEY}"]
tools:
  echo: {function: "tests.test_secrets:echo"}
agents:
  agent:
    tools: [echo]
    model_settings: {extra_headers: {X-Extra: "${EXTRA}"}}
sessions: {path: sessions.sqlite3}
tracing: {path: traces.jsonl}
"""


def echo(text: str) -> str:
    """Say `text` back.

    Args:
        text: what to say.
    """
    return f"you said: {text}"


@dataclass(frozen=True)
class Planted:
    """The secrets of one example, as the configuration gets them (line ends and all)."""

    key: str
    password: str
    header: str
    extra: str

    def values(self) -> list[str]:
        """What must never be shown: each secret as it is sent."""
        return [s.strip() for s in (self.key, self.password, self.header, self.extra)]

    def environ(self, url: str) -> dict[str, str]:
        scheme, rest = url.split("://", 1)
        with_password = f"{scheme}://user:{quote(self.password.strip(), safe='')}@{rest}"
        return {"URL": with_password, "KEY": self.key, "HEADER": self.header, "EXTRA": self.extra}


def shown(secret: str, text: str) -> bool:
    """Whether `secret` is in `text`, as it is or escaped as JSON and Python escape it."""
    forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe="")}
    return any(form in text for form in forms)


def echo_headers(status: int) -> Any:
    """A server that answers with an error whose body repeats the request's secret headers."""

    def respond(request: RecordedRequest) -> Reply:
        heard = {name: request.headers.get(name) for name in ("authorization", "x-token")}
        return fault(status=status, message=f"rejected: Authorization: {heard}")

    return respond


def echo_keys(request: RecordedRequest) -> Reply:
    """The model calls the tool with the secrets it was sent (the tool says them back)."""
    if request.function_outputs:
        return Reply(final="done")
    said = " ".join(request.headers.get(name, "") for name in ("authorization", "x-token"))
    return Reply(calls=[call("echo", text=said)])


FAULTS: dict[str, Any] = {
    "500-echo": echo_headers(500),
    "401-echo": echo_headers(401),
    "tool-echo": echo_keys,
    "refused": None,
    "inner-line-break": None,
}

_secret_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=6, max_size=20
)
_line_end = st.sampled_from(["", "\r", "\r\n", "\n", " ", "\t \r\n"])


@st.composite
def planted(draw: st.DrawFn) -> Planted:
    def one(prefix: str) -> str:
        return prefix + draw(_secret_text).strip() + draw(_line_end)

    return Planted(key=one("sk-"), password=one("pw"), header=one("hv"), extra=one("xh"))


class Lines(logging.Handler):
    """Log lines as the CLI writes them: every record through the redaction filter."""

    def __init__(self, secrets: Secrets) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.addFilter(RedactFilter(secrets.text))
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def log_lines(secrets: Secrets) -> Iterator[Lines]:
    root = logging.getLogger()
    handler, level = Lines(secrets), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def drive(case: str, secrets: Planted, folder: Path) -> tuple[list[str], str]:
    """Run the agent into `case`; returns every text a user may see, and the trace."""
    (folder / "agents.yaml").write_text(CONFIG, encoding="utf-8")
    texts: list[str] = []
    command = Secrets()
    error: BaseException | None = None
    async with MockVLLM(default=FAULTS[case]) as mock:
        url = closed_port_url() if case == "refused" else mock.url
        environ = secrets.environ(url)
        if case == "inner-line-break":
            environ["KEY"] = environ["KEY"].strip()[:4] + "\n" + environ["KEY"].strip()[4:]
        with log_lines(command) as logs:
            try:
                config = load_config(folder / "agents.yaml", environ=environ)
                command.add_config(config)
                async with Runtime(config) as runtime:
                    await runtime.run("agent", "hello")
            except AgentRuntimeError as exc:
                error = exc
                texts += [str(exc), repr(exc)]
        texts += logs.lines
    if case != "tool-echo":
        assert error is not None, case
    if error is not None:
        stderr = io.StringIO()
        with (
            contextlib.redirect_stderr(stderr),
            pytest.raises(SystemExit),
            handle_errors(True, command),
        ):
            raise error
        texts.append(stderr.getvalue())
    trace = folder / "traces.jsonl"
    return texts, trace.read_text(encoding="utf-8") if trace.exists() else ""


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secrets=planted(), case=st.sampled_from(sorted(FAULTS)))
def test_planted_secrets_are_shown_nowhere(
    secrets: Planted, case: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("secrets")
    texts, trace = asyncio.run(drive(case, secrets, folder))
    for secret in secrets.values():
        for text in [*texts, trace]:
            assert not shown(secret, text), (case, secret, text)


# -- the command line ---------------------------------------------------------------------------

KEY = "sk-live'Q%7e\"x;y\\z"  # quotes, a percent sign, a backslash, a semicolon
PASSWORD = "p@ss:w/rd 1"
HEADER = "hv-t0k3n;z"


def run_cli(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    (folder / "agents.yaml").write_text(CONFIG, encoding="utf-8")
    scheme, rest = url.split("://", 1)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "URL": f"{scheme}://user:{quote(PASSWORD, safe='')}@{rest}",
        "KEY": KEY + "\r\n",  # a .env file with CRLF line ends
        "HEADER": " " + HEADER + "\r",
        "EXTRA": "xh-extra-1",
    }
    return subprocess.run(
        [sys.executable, "-m", "agent_runtime", "run", "-c", str(folder / "agents.yaml"), *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("case", "code"),
    [
        pytest.param("401-echo", 3, id="401-echoing-the-key"),
        pytest.param("refused", 3, id="connection-refused"),
        pytest.param("tool-echo", 0, id="tool-echoing-the-key"),
    ],
)
def test_the_cli_shows_no_secret(case: str, code: int, tmp_path: Path) -> None:
    with MockVLLM(default=FAULTS[case]) as mock:
        url = closed_port_url() if case == "refused" else mock.url
        result = run_cli(tmp_path, url, "agent", "hello", "--debug")
    assert result.returncode == code, result.stderr
    trace = (tmp_path / "traces.jsonl").read_text(encoding="utf-8")
    assert "run_end" in trace
    for secret in (KEY, PASSWORD, HEADER, "xh-extra-1"):
        for text in (result.stdout, result.stderr, trace):
            assert not shown(secret, text), (secret, text)
    if case != "tool-echo":
        assert [line for line in result.stderr.splitlines() if line.startswith("Error: ")]


class OwnRecords(logging.Handler):
    """The package's own log records as a library user's handler gets them: no filter added."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("agent_runtime"):
            self.lines.append(self.format(record))


async def test_the_runtimes_own_log_lines_are_masked_without_any_setup(tmp_path: Path) -> None:
    secrets = Planted(key="sk-own-1\r\n", password="pw-own-2", header="hv-own-3", extra="xh-own4")
    (tmp_path / "agents.yaml").write_text(CONFIG, encoding="utf-8")
    handler, root = OwnRecords(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        async with MockVLLM(default=echo_headers(500)) as mock:
            config = load_config(tmp_path / "agents.yaml", environ=secrets.environ(mock.url))
            async with Runtime(config) as runtime:
                with pytest.raises(AgentRuntimeError):
                    await runtime.run("agent", "hello")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    retries = [line for line in handler.lines if "retr" in line.lower()]
    assert retries, handler.lines  # the retry warning, which quotes the server's answer
    assert "***" in "\n".join(retries)
    for secret in secrets.values():
        assert not any(shown(secret, line) for line in handler.lines), secret


def test_every_module_that_logs_uses_a_redacted_logger() -> None:
    package = ROOT / "agent_runtime"
    plain = [
        str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        if "logging.getLogger(__name__)" in path.read_text(encoding="utf-8")
        and "testing" not in path.parts
    ]
    assert plain == []
