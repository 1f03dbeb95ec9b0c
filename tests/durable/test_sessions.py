"""`PostgresSessionStore`: the items of a session in order, a durable run's write stored once,
concurrent writers from several connections never interleaving a write, retention with
`keep_days`, the newest session of a kind."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent_runtime.durable.sessions import PostgresSessionStore
from agent_runtime.errors import AgentRuntimeError


def message(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def test_items_are_stored_in_order_and_cleared(postgres_db: str) -> None:
    store = PostgresSessionStore(postgres_db)
    try:
        assert await store.load("s") == []
        await store.append("s", [message("a"), message("b")])
        await store.append("s", [message("c\ud800")])
        await store.append("other", [message("x")])
        assert await store.load("s") == [message("a"), message("b"), message("c\ufffd")]
        await store.clear("s")
        assert await store.load("s") == []
        assert await store.load("other") == [message("x")]
    finally:
        store.close()


async def test_a_write_with_a_key_is_stored_once(postgres_db: str) -> None:
    store = PostgresSessionStore(postgres_db)
    try:
        await store.append_once("s", [message("a")], key="run-1")
        await store.append_once("s", [message("a")], key="run-1")
        await store.append_once("s", [message("b")], key="run-2")
        assert await store.load("s") == [message("a"), message("b")]
    finally:
        store.close()


async def test_concurrent_writers_never_interleave(postgres_db: str) -> None:
    stores = [PostgresSessionStore(postgres_db) for _ in range(4)]
    try:
        await asyncio.gather(
            *(
                store.append("s", [message(f"{n}-{i}") for i in range(5)])
                for n, store in enumerate(stores)
                for _ in range(3)
            )
        )
        items = await stores[0].load("s")
    finally:
        for store in stores:
            store.close()
    assert len(items) == 4 * 3 * 5
    writes = [items[start : start + 5] for start in range(0, len(items), 5)]
    for write in writes:
        writer = {item["content"].split("-")[0] for item in write}
        assert len(writer) == 1
        assert [item["content"].split("-")[1] for item in write] == ["0", "1", "2", "3", "4"]


def test_an_unreachable_database_is_named_without_its_password() -> None:
    store = PostgresSessionStore("postgresql://agent:s3cret-pw@127.0.0.1:9/agents")
    with pytest.raises(AgentRuntimeError) as error:
        store.load_sync("s")
    assert "s3cret-pw" not in str(error.value)
    assert str(error.value).startswith("cannot open the session database agents at 127.0.0.1:9: ")


# -- retention and the newest session ----------------------------------------------------------


def age(url: str, session_id: str, days: float) -> None:
    """Make a session look last written `days` days ago."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE agent_runtime_session_times SET updated_at = %s WHERE session_id = %s",
            (time.time() - days * 86_400, session_id),
        )


async def test_prune_forgets_sessions_not_written_for_keep_days(postgres_db: str) -> None:
    store = PostgresSessionStore(postgres_db)
    try:
        await store.append_once("old", [message("a")], key="run-1")
        await store.append("new", [message("b")])
        age(postgres_db, "old", 3)
        assert store.prune_sync(2) == ["old"]
        assert await store.load("old") == []
        assert await store.load("new") == [message("b")]
        # Its writes are forgotten with it: the same durable write is stored again.
        await store.append_once("old", [message("a")], key="run-1")
        assert await store.load("old") == [message("a")]
        assert store.prune_sync(2) == []
    finally:
        store.close()


async def test_retention_runs_when_a_store_connects_at_most_once_an_hour(postgres_db: str) -> None:
    writer = PostgresSessionStore(postgres_db)
    try:
        await writer.append("old", [message("a")])
        await writer.append("young", [message("b")])
        age(postgres_db, "old", 10)
        age(postgres_db, "young", 1)
    finally:
        writer.close()
    kept = PostgresSessionStore(postgres_db, keep_days=5)
    try:
        assert await kept.load("old") == []  # forgotten when it connected
        assert await kept.load("young") == [message("b")]
    finally:
        kept.close()
    age(postgres_db, "young", 10)
    again = PostgresSessionStore(postgres_db, keep_days=5)
    try:  # pruned less than an hour ago: not again yet
        assert await again.load("young") == [message("b")]
    finally:
        again.close()


async def test_sessions_stored_before_their_times_start_counting_at_the_prune(
    postgres_db: str,
) -> None:
    import psycopg

    store = PostgresSessionStore(postgres_db)
    try:
        await store.append("s", [message("a")])
        with psycopg.connect(postgres_db, autocommit=True) as conn:
            conn.execute("DELETE FROM agent_runtime_session_times")
        assert store.prune_sync(0.5) == []
        assert await store.load("s") == [message("a")]
    finally:
        store.close()


async def test_newest_is_the_session_written_last_with_the_prefix(postgres_db: str) -> None:
    store = PostgresSessionStore(postgres_db)
    try:
        assert store.newest("run-") is None
        await store.append("run%x", [message("d")])
        await store.append("run-a", [message("a")])
        await store.append("run-b", [message("b")])
        await store.append("chat-c", [message("c")])
        assert store.newest("run-") == "run-b"
        assert store.newest("chat-") == "chat-c"
        assert store.newest("run%") == "run%x"  # `%` in a prefix is itself
        await store.append("run-a", [message("e")])
        assert store.newest("run-") == "run-a"
        await store.clear("run-a")
        assert store.newest("run-") == "run-b"
    finally:
        store.close()
