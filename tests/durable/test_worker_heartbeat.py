"""Worker heartbeats and the takeover of silent workers, on SQLite and the real Postgres, with
the recovery call recorded instead of DBOS's (the end-to-end takeover with DBOS is in
test_kill.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import sqlalchemy

from agent_runtime.durable.worker import (
    TABLE,
    Heartbeat,
    database_engine,
    display_url,
)
from tests.durable.workers import wait_until

LOCK = 0x6167656E7472
"""The advisory lock a takeover holds on Postgres."""


class Recovered:
    """A stand-in for `recover_runs`: records the executors it was asked to recover."""

    def __init__(self, runs: int = 2, *, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.runs = runs
        self.fail = fail

    def __call__(self, executor_ids: Sequence[str]) -> int:
        self.calls.append(list(executor_ids))
        if self.fail:
            raise RuntimeError("recovery failed")
        return self.runs


@pytest.fixture
def engine(database_url: str) -> Iterator[sqlalchemy.Engine]:
    engine = database_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def heartbeat(
    engine: sqlalchemy.Engine,
    name: str,
    recover: Recovered | None = None,
    *,
    interval_s: float = 1.0,
) -> Heartbeat:
    beat = Heartbeat(
        engine,
        executor_id=name,
        concurrency=3,
        takeover_after_s=5.0,
        recover=recover or Recovered(),
        interval_s=interval_s,
    )
    beat.register()
    return beat


def silence(engine: sqlalchemy.Engine, executor_id: str) -> None:
    """Make a worker look silent for a long time (as a SIGKILLed one becomes)."""
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(f"UPDATE {TABLE} SET beat_at = beat_at - 3600 WHERE executor_id = :id"),
            {"id": executor_id},
        )


def test_a_registered_worker_has_a_fresh_row(engine: sqlalchemy.Engine) -> None:
    beat = heartbeat(engine, "w-a")
    rows = beat.rows()
    assert [(r.executor_id, r.concurrency) for r in rows] == [("w-a", 3)]
    assert 0 <= rows[0].silent_s < 5
    assert beat.beat() is True


def test_a_silent_worker_is_taken_over_once_and_its_row_deleted(
    engine: sqlalchemy.Engine,
) -> None:
    recovered = Recovered(runs=4)
    dead = heartbeat(engine, "w-dead")
    live = heartbeat(engine, "w-live", recovered)
    other = heartbeat(engine, "w-other", recovered)
    assert live.take_over() == []  # nobody silent yet
    silence(engine, "w-dead")
    assert live.take_over() == [("w-dead", 4)]
    assert other.take_over() == []
    assert recovered.calls == [["w-dead"]]
    assert sorted(r.executor_id for r in live.rows()) == ["w-live", "w-other"]
    assert dead.beat() is False  # the dead one, back after all, learns its runs are gone


def test_a_worker_never_takes_itself_over(engine: sqlalchemy.Engine) -> None:
    recovered = Recovered()
    beat = heartbeat(engine, "w-self", recovered)
    silence(engine, "w-self")
    assert beat.take_over() == []
    assert recovered.calls == []


def test_a_takeover_that_fails_is_tried_again(engine: sqlalchemy.Engine) -> None:
    failing = Recovered(fail=True)
    heartbeat(engine, "w-dead")
    live = heartbeat(engine, "w-live", failing)
    silence(engine, "w-dead")
    with pytest.raises(RuntimeError, match="recovery failed"):
        live.take_over()
    assert "w-dead" in [r.executor_id for r in live.rows()]
    failing.fail = False
    assert live.take_over() == [("w-dead", 2)]
    assert [r.executor_id for r in live.rows()] == ["w-live"]


def test_on_postgres_one_worker_at_a_time_takes_over(postgres_db: str) -> None:
    engine = database_engine(postgres_db)
    try:
        recovered = Recovered()
        heartbeat(engine, "w-dead")
        live = heartbeat(engine, "w-live", recovered)
        silence(engine, "w-dead")
        with engine.begin() as holder:  # another worker's takeover in progress
            holder.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK})
            assert live.take_over() == []
        assert recovered.calls == []
        assert live.take_over() == [("w-dead", 2)]
    finally:
        engine.dispose()


def test_a_worker_that_stops_hands_its_runs_over_at_once(engine: sqlalchemy.Engine) -> None:
    recovered = Recovered()
    leaving = heartbeat(engine, "w-leaving")
    done = heartbeat(engine, "w-done")
    live = heartbeat(engine, "w-live", recovered)
    leaving.stop(hand_over=True)
    done.stop(hand_over=False)
    assert [r.executor_id for r in live.rows()] == ["w-leaving", "w-live"]
    assert live.take_over() == [("w-leaving", 2)]
    assert [r.executor_id for r in live.rows()] == ["w-live"]


def test_the_thread_beats_takes_over_and_notices_when_it_was_taken_over(
    engine: sqlalchemy.Engine,
) -> None:
    recovered = Recovered()
    heartbeat(engine, "w-dead")
    silence(engine, "w-dead")
    beat = heartbeat(engine, "w-live", recovered, interval_s=0.05)
    beat.start()
    try:
        wait_until(lambda: bool(recovered.calls), timeout=10, what="the takeover")
        assert recovered.calls == [["w-dead"]]
        assert beat.taken_over == [("w-dead", 2)]
        with engine.begin() as connection:  # another worker decides this one is dead
            connection.execute(sqlalchemy.text(f"DELETE FROM {TABLE}"))
        assert beat.lost.wait(10)
    finally:
        beat.stop(hand_over=False)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            "postgresql://app:s3cret@db:5432/runs", "postgresql://app:***@db:5432/runs", id="pw"
        ),
        pytest.param("postgresql://app@db/runs", "postgresql://app@db/runs", id="user-only"),
        pytest.param("sqlite:////var/runs.sqlite", "sqlite:////var/runs.sqlite", id="sqlite"),
        pytest.param(
            "postgresql://a:p%40ss@h/d?sslmode=require",
            "postgresql://a:***@h/d?sslmode=require",
            id="quoted",
        ),
    ],
)
def test_display_url_masks_the_password(url: str, shown: str) -> None:
    assert display_url(url) == shown
