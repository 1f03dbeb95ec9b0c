"""The throwaway Postgres fixture itself: a fresh database per test that accepts connections."""

from __future__ import annotations

import psycopg


def test_fresh_database_is_empty_and_writable(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, connect_timeout=10) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        conn.execute("CREATE TABLE marker (x int)")
    assert tables == (0,)


def test_each_test_gets_its_own_database(postgres_db: str, postgres_url: str) -> None:
    assert postgres_db != postgres_url
    with psycopg.connect(postgres_db, connect_timeout=10) as conn:
        found = conn.execute("SELECT to_regclass('public.marker')").fetchone()
    assert found == (None,)
