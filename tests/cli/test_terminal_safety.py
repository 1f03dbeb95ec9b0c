"""Model and tool text is data on the terminal: `run` and `chat` in a real pseudo-terminal and in
a pipe, with tools and a model whose text holds rich markup, escape sequences and control
characters (tests/project/hostile.yaml)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

from agent_runtime.cli.render import PlainRenderer, TerminalRenderer
from agent_runtime.results import (
    Handoff,
    Retrying,
    RunFinished,
    RunResult,
    ToolCall,
    ToolResult,
    Usage,
)
from agent_runtime.testing import MockVLLM, Reply, call
from agent_runtime.text import clip, one_line, visible
from tests import helpers
from tests.project.fixture_tools.hostile import HOSTILE

PROJECT = helpers.PROJECT / "hostile.yaml"
CHAT_PROMPT = ">\x08"  # prompt_toolkit draws "> " as ">" and a cursor move

# What the terminal must never receive from model or tool text, and what it shows instead.
OBEYED = [b"\x1b]0;pwned", b"\x1b[2J", b"\x1b]52;", b"\x1b[31mred", b"\xc2\x9b", b"\x1b]8;"]
SHOWN = ["␛]0;pwned␇", "␛[2J", "␛]52;c;cm0gLXJmIH4=␇", "␛[31mred\\x9b1m", "over␈␇"]
LITERAL = ["x [/y] z", "[link=https://evil.example]click[/link]", "[bold red]loud", ":smile:"]


@pytest.fixture
def mock() -> Iterator[MockVLLM]:
    with MockVLLM() as server:
        yield server


def environment(mock: MockVLLM, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**env, "MOCK_URL": mock.url, "STATE_DIR": str(tmp_path / "state"), **extra}


def in_a_terminal(mock: MockVLLM, tmp_path: Path, *args: str) -> pexpect.spawn:
    """The command on a pseudo-terminal (stdin, stdout and stderr), colours on."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "agent_runtime", *args],
        env=environment(
            mock, tmp_path, TERM="xterm-256color", COLUMNS="400", PROMPT_TOOLKIT_NO_CPR="1"
        ),
        cwd=str(helpers.ROOT),
        timeout=60,
        dimensions=(50, 400),
    )


def assert_shown_not_obeyed(output: bytes, *, prompt_toolkit: bool = False) -> None:
    for sequence in OBEYED:
        assert sequence not in output
    if not prompt_toolkit:  # which moves its cursor with backspaces
        assert b"\x07" not in output and b"\x08" not in output and b" \rover" not in output
    text = output.decode()
    for shown in [*SHOWN, *LITERAL]:
        assert shown in text
    assert "😄" not in text


# -- run and chat in a terminal -------------------------------------------------------------


def test_run_in_a_terminal_shows_hostile_text_and_obeys_none_of_it(
    mock: MockVLLM, tmp_path: Path
) -> None:
    raw_arguments = '{"text": "' + HOSTILE.replace("\\", "") + '"}'  # raw controls: not JSON
    answer = f"Here it is:\n\t{HOSTILE}\nDone."
    mock.add(
        Reply(reasoning=f"Think {HOSTILE}", calls=[call("page"), call("echo", raw_arguments)]),
        Reply(reasoning="Answer now.", final=answer),
    )
    child = in_a_terminal(mock, tmp_path, "run", "-c", str(PROJECT), "reader", "Read it")
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    output: bytes = child.before
    assert_shown_not_obeyed(output)
    text = output.decode()
    assert "→ page" in text and "→ echo" in text and "← page" in text
    # The answer keeps its lines (a pty writes a newline as CR LF; rich expands the tab).
    assert "Here it is:\r\n        x [/y] z" in text
    assert "␍over␈␇" in text  # on one line (a tool result) a CR is a space, in an answer shown
    assert "\r\nDone." in text


def test_chat_goes_on_after_a_tool_result_that_is_broken_markup(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(
        Reply(reasoning="Read it.", calls=[call("page")]),
        Reply(final="The page says x [/y] z."),
        Reply(final="Still here."),
    )
    child = in_a_terminal(mock, tmp_path, "chat", "-c", str(PROJECT), "reader")
    child.logfile_read = io.BytesIO()
    try:
        child.expect(CHAT_PROMPT)
        child.sendline("Read the page")
        child.expect("← page".encode())
        child.expect_exact(b"The page says x [/y] z.")
        child.expect(CHAT_PROMPT)
        child.sendline("Are you there?")
        child.expect("Still here.")
        child.expect(CHAT_PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert_shown_not_obeyed(child.logfile_read.getvalue(), prompt_toolkit=True)
    assert len(mock.model_requests) == 3


# -- run in a pipe --------------------------------------------------------------------------


def run_in_a_pipe(mock: MockVLLM, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_runtime", "run", "-c", str(PROJECT), "reader", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environment(mock, tmp_path),
        cwd=helpers.ROOT,
        timeout=120,
        check=False,
    )


def test_verbose_run_in_a_pipe_shortens_huge_arguments_and_keeps_the_answer_whole(
    mock: MockVLLM, tmp_path: Path
) -> None:
    huge = "A" * 10_000_000
    answer = f"{HOSTILE}\n" + "B" * 100_000
    mock.add(
        Reply(reasoning="Echo.", calls=[call("echo", text=huge), call("page")]),
        Reply(final=answer),
    )
    result = run_in_a_pipe(mock, tmp_path, "Echo it", "-v")
    assert result.returncode == 0, result.stderr[-2000:]
    # stdout in a pipe is data for programs: the whole answer, not shortened.
    assert result.stdout.startswith("x [/y] z [link=https://evil.example]click[/link]")
    assert result.stdout.endswith("\n" + "B" * 100_000 + "\n")
    tool, no_arguments, echoed, page = result.stderr.splitlines()
    arguments = '{"text":"' + "A" * 1991
    assert tool == f"[tool] echo {arguments}… [{len(huge) + 11 - 2000:,} more characters]"
    assert no_arguments == "[tool] page {}"
    # (the runtime itself cuts what a tool returns before the model and the renderer see it)
    assert echoed.startswith(f"[result] echo {'A' * 160}… [")
    assert echoed.endswith(" more characters]")
    assert page.startswith("[result] page x [/y] z [link=https://evil.example]")
    assert "␛]0;pwned␇ ␛[2J" in page
    assert "\x1b" not in result.stderr


# -- the renderers, event by event ----------------------------------------------------------


def terminal() -> tuple[TerminalRenderer, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="truecolor", width=400)
    return TerminalRenderer(console, show_reasoning=True), out


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(ToolCall(agent="a", name=HOSTILE, call_id="c", arguments=HOSTILE), id="call"),
        pytest.param(ToolResult(agent="a", name="t", call_id="c", output=HOSTILE), id="result"),
        pytest.param(Retrying(agent="a", attempt=1, cause=HOSTILE), id="retry"),
        pytest.param(Handoff(agent="a", to_agent=HOSTILE), id="handoff"),
    ],
)
def test_every_event_is_shown_as_data(event: object) -> None:
    renderer, out = terminal()
    renderer.event(event)  # type: ignore[arg-type]
    renderer.close()
    assert_shown_not_obeyed(out.getvalue().encode())
    lines = io.StringIO()
    PlainRenderer(lines, show_reasoning=True, show_tools=True).event(event)  # type: ignore[arg-type]
    assert_shown_not_obeyed(lines.getvalue().encode())


def test_a_structured_answer_is_shown_as_data() -> None:
    renderer, out = terminal()
    result = RunResult(
        final_output={"page": HOSTILE, "\u202ekey": "[/y]"},
        items=(),
        usage=Usage(),
        turns=1,
        trace_id="trace_1",
        agent="a",
    )
    renderer.event(RunFinished(result=result))
    shown = out.getvalue()
    assert "\x1b]0;pwned" not in shown and "\u202e" not in shown and "\x9b" not in shown
    assert "\\\\x9b1m" in shown  # JSON shows the backslash of the visible form escaped
    assert "\\\\u202ekey" in shown


# -- the text functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lines", "shown"),
    [
        pytest.param("\x1b]0;t\x07", True, "␛]0;t␇", id="osc-title"),
        pytest.param("a\r\nb\rc\x08\x7f", True, "a\nb␍c␈␡", id="crlf-kept-cr-shown"),
        pytest.param("a\n\tb", True, "a\n\tb", id="newline-and-tab-kept"),
        pytest.param("a\n\tb", False, "a␊␉b", id="one-line"),
        pytest.param("\x9b2J \u202eabc \ud800", True, "\\x9b2J \\u202eabc \\ud800", id="c1-bidi"),
        pytest.param("é 日本 [b]", True, "é 日本 [b]", id="text-untouched"),
    ],
)
def test_visible(text: str, lines: bool, shown: str) -> None:
    assert visible(text, lines=lines) == shown


def test_one_line_and_clip() -> None:
    assert one_line("a  b\n\tc", 10) == "a b c"
    assert one_line("x" * 10_000_000, 20) == "x" * 20 + "… [9,999,980 more characters]"
    assert one_line("abc\x1b[2Jdef", 6, note=False) == "abc␛[…"
    assert clip("abcdef", 3) == "abc… [3 more characters]"
    assert clip("abc", 3) == "abc"
    assert json.dumps(one_line('{"a": 1}', 100)) == json.dumps('{"a": 1}')
