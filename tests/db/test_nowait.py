"""``Database.transaction(nowait=True)``: SQLite's write lock at once, or nothing done.

A write run on the event loop must never sit in SQLite's busy handler (the
whole process would stall): it begins with no lock wait, and when another
connection (another process) holds the lock it fails before any statement,
leaving the connection as every other writer expects it (the lock wait back).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from segmentd.api.runtime import Runtime
from segmentd.db.base import WriteLockBusy
from segmentd.db.models import Network


@pytest.fixture
def held_elsewhere(runtime: Runtime, is_postgres: bool) -> Iterator[sqlite3.Connection]:
    if is_postgres:
        pytest.skip("SQLite's write lock")
    other = sqlite3.connect(str(runtime.db.writer.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.close()


def _networks(runtime: Runtime) -> int:
    with runtime.db.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(Network)) or 0


def _add_network(runtime: Runtime, nowait: bool) -> None:
    with runtime.db.transaction(write=True, nowait=nowait) as session:
        session.add(Network(id="n-nowait", name="n", project_id="p", mtu=1500))


def test_a_held_lock_fails_at_once_and_writes_nothing(
    runtime: Runtime, held_elsewhere: sqlite3.Connection
) -> None:
    before = _networks(runtime)
    with pytest.raises(WriteLockBusy):
        _add_network(runtime, nowait=True)
    held_elsewhere.execute("ROLLBACK")
    assert _networks(runtime) == before
    with runtime.db.writer.connect() as conn:
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout == runtime.settings.sqlite_busy_timeout_ms


def test_a_free_lock_is_taken_and_the_write_commits(runtime: Runtime) -> None:
    before = _networks(runtime)
    _add_network(runtime, nowait=True)
    assert _networks(runtime) == before + 1
