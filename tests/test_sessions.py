"""Session storage (real SQLite) and the consistency rule for stored histories."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.sessions import SessionStore, consistent_prefix

USER = {"role": "user", "content": "hi"}
REASONING = {"type": "reasoning", "id": "rs_1", "summary": [], "content": []}
CALL = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "1"}
ANSWER = {"role": "assistant", "content": "done"}


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        pytest.param([USER, REASONING, CALL, OUTPUT, ANSWER], 5, id="complete"),
        pytest.param([USER, REASONING, CALL], 1, id="call-without-output"),
        pytest.param([USER, REASONING], 1, id="trailing-reasoning"),
        pytest.param([USER, REASONING, CALL, OUTPUT, REASONING], 4, id="reasoning-after-output"),
        pytest.param([USER, CALL, {**CALL, "call_id": "c2"}, OUTPUT], 1, id="second-call-orphan"),
        pytest.param([], 0, id="empty"),
    ],
)
def test_consistent_prefix(items: list[Any], expected: int) -> None:
    assert consistent_prefix(items) == items[:expected]


def test_store_round_trip_and_isolation(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "deep" / "sessions.sqlite3")
    store.append_sync("a", [USER, ANSWER])
    store.append_sync("b", [USER])
    store.append_sync("a", [{"role": "user", "content": "é ✓"}])
    assert store.load_sync("a") == [USER, ANSWER, {"role": "user", "content": "é ✓"}]
    assert store.load_sync("b") == [USER]
    assert store.load_sync("new") == []
    store.clear_sync("a")
    assert store.load_sync("a") == []
    store.close()
    reopened = SessionStore(tmp_path / "deep" / "sessions.sqlite3")
    assert reopened.load_sync("b") == [USER]
    reopened.close()


def test_concurrent_appends_keep_every_item(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite3")

    def writer(n: int) -> None:
        for i in range(20):
            store.append_sync("shared", [{"role": "user", "content": f"{n}-{i}"}])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contents = [item["content"] for item in store.load_sync("shared")]
    assert sorted(contents) == sorted(f"{n}-{i}" for n in range(4) for i in range(20))
    store.close()


async def test_async_api(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite3")
    await store.append("x", [USER])
    assert await store.load("x") == [USER]
    await store.clear("x")
    assert await store.load("x") == []
    store.close()


async def test_runs_of_a_session_take_turns_and_other_sessions_do_not_wait(
    tmp_path: Path,
) -> None:
    store = SessionStore(tmp_path / "s.sqlite3")
    order: list[str] = []
    first_in, release = asyncio.Event(), asyncio.Event()

    async def run(name: str, session: str) -> None:
        async with store.hold(session):
            order.append(f"{name} in")
            if name == "first":
                first_in.set()
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(run("first", "s"))
    await first_in.wait()
    later = [asyncio.create_task(run(name, "s")) for name in ("second", "third")]
    waiting = asyncio.create_task(run("cancelled", "s"))
    await run("other", "t")  # another session: not held up
    waiting.cancel()
    release.set()
    await asyncio.gather(first, *later, waiting, return_exceptions=True)
    assert order == [
        "first in",
        "other in",
        "other out",
        "first out",
        "second in",
        "second out",
        "third in",
        "third out",
    ]
    async with asyncio.timeout(10), store.hold("s"):  # free again
        pass
    store.close()
