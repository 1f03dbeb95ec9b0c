"""Sessions' retention (`sessions.keep_days`) and the newest session of a kind (`--continue`)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from agent_runtime.sessions import SessionStore

DAY = 86_400.0
ITEM = {"role": "user", "content": "hi"}


def set_time(path: Path, session: str, when: float) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "UPDATE session_times SET updated_at = ? WHERE session_id = ?", (when, session)
        )
    connection.close()


def test_newest_is_the_session_written_last(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite3")
    assert store.newest("run-") is None
    store.append_sync("run-1", [ITEM])
    store.append_sync("chat-1", [ITEM])
    store.append_sync("run-2", [ITEM])
    store.append_sync("run-1", [ITEM])  # written again: newest now
    assert store.newest("run-") == "run-1"
    assert store.newest("chat-") == "chat-1"
    assert store.newest() == "run-1"
    assert store.newest("run_") is None  # `_` is no wildcard
    store.clear_sync("run-1")
    assert store.newest("run-") == "run-2"
    store.close()


def test_prune_forgets_sessions_not_written_for_keep_days(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SessionStore(path)
    store.append_sync("old", [ITEM])
    store.append_sync("new", [ITEM])
    store.close()
    set_time(path, "old", time.time() - 40 * DAY)
    store = SessionStore(path)
    assert store.prune_sync(30) == ["old"]
    assert store.load_sync("old") == []
    assert store.load_sync("new") == [ITEM]
    assert store.prune_sync(30) == []
    store.close()


def test_keep_days_is_applied_when_the_store_opens_at_most_hourly(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SessionStore(path)
    store.append_sync("old", [ITEM])
    store.close()
    set_time(path, "old", time.time() - 40 * DAY)
    store = SessionStore(path, keep_days=30)
    assert store.load_sync("old") == []
    store.append_sync("old2", [ITEM])
    store.close()
    set_time(path, "old2", time.time() - 40 * DAY)
    store = SessionStore(path, keep_days=30)  # pruned less than an hour ago: kept for now
    assert store.load_sync("old2") == [ITEM]
    store.close()


def test_sessions_stored_before_times_were_kept_age_from_now(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "CREATE TABLE session_items (session_id TEXT NOT NULL, position INTEGER NOT NULL, "
            "item TEXT NOT NULL, PRIMARY KEY (session_id, position))"
        )
        connection.execute("INSERT INTO session_items VALUES ('legacy', 0, '\"hi\"')")
    connection.close()
    store = SessionStore(path, keep_days=1)
    assert store.load_sync("legacy") == ["hi"]
    assert store.newest() == "legacy"
    assert store.prune_sync(1, now=time.time() + 2 * DAY) == ["legacy"]
    store.close()


@pytest.mark.parametrize("keep_days", [0.5, 30])
def test_a_store_without_old_sessions_loses_nothing(tmp_path: Path, keep_days: float) -> None:
    store = SessionStore(tmp_path / "s.sqlite3", keep_days=keep_days)
    store.append_sync("a", [ITEM, ITEM])
    assert store.load_sync("a") == [ITEM, ITEM]
    store.close()
