"""`--continue` for `run` and `chat`: which stored conversation a command goes on with.

Every `run` and `chat` keeps its conversation in the session store, under the `--session`
given or a new id (`run-…`, `chat-…`); `--continue` picks the one of its kind written last.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import click

from agent_runtime.cli.common import EXIT_USAGE, exit_with
from agent_runtime.config import Config

__all__ = ["continue_option", "new_session", "pick_session"]

F = TypeVar("F", bound=Callable[..., Any])


def continue_option(help: str) -> Callable[[F], F]:
    """`--continue`: go on with the last conversation."""
    return click.option("--continue", "continue_", is_flag=True, help=help)


def new_session(kind: Literal["run", "chat"]) -> str:
    """A fresh session id for a command's conversation (`run-…`, `chat-…`)."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def pick_session(
    config: Config, session: str | None, continue_: bool, *, kind: Literal["run", "chat"]
) -> str:
    """The session a command uses: `--session`, the newest of its kind with `--continue`, or
    a new one. Exits with a usage error when both are given or there is nothing to continue."""
    if not continue_:
        return session or new_session(kind)
    if session is not None:
        exit_with(EXIT_USAGE, "--continue and --session both choose the conversation: give one.")
    from agent_runtime.sessions import SessionStore

    path = config.resolve_path(config.spec.sessions.path)
    found = None
    if path.is_file():
        store = SessionStore(path)
        try:
            found = store.newest(f"{kind}-")
        finally:
            store.close()
    if found is None:
        exit_with(
            EXIT_USAGE,
            f"there is no earlier {kind} to continue in {path}: start one without --continue "
            f"(or pick a conversation with --session ID).",
        )
    return found
