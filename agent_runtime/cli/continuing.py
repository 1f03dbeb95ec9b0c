"""`--continue` for `run` and `chat`: which stored conversation a command goes on with.

Every `run` and `chat` keeps its conversation in the session store, under the `--session`
given or a new id (`run-…`, `chat-…`); `--continue` picks the one of its kind written last.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from agent_runtime.cli.common import EXIT_USAGE, exit_with
from agent_runtime.config import Config

if TYPE_CHECKING:
    from agent_runtime.sessions import SessionStore

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
    store, where = stored_sessions(config)
    found = None
    if store is not None:
        try:
            found = store.newest(f"{kind}-")
        finally:
            store.close()
    if found is None:
        exit_with(
            EXIT_USAGE,
            f"there is no earlier {kind} to continue in {where}: start one without --continue "
            f"(or pick a conversation with --session ID).",
        )
    return found


def stored_sessions(config: Config) -> tuple[SessionStore | None, str]:
    """The session store of `config`'s runs as it stands, and where it is (for messages): the
    durability database when it is Postgres, else the SQLite file of `sessions.path` (None when
    there is no such file yet: nothing is created). Retention is left to the caller."""
    from agent_runtime.sessions import SessionStore

    path = config.resolve_path(config.spec.sessions.path)
    if config.spec.durability is not None:  # Postgres keeps the sessions of durable runs
        from agent_runtime.durable.setup import with_database_url

        durability = with_database_url(config, None).spec.durability
        if durability is not None and not durability.database_url.startswith("sqlite"):
            from agent_runtime.durable.sessions import PostgresSessionStore

            return PostgresSessionStore(durability.database_url), "the durability database"
    return (SessionStore(path) if path.is_file() else None), str(path)
