"""`PostgresSessionStore`: the items of a session in order, a durable run's write stored once,
concurrent writers from several connections never interleaving a write."""

from __future__ import annotations

import asyncio

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
