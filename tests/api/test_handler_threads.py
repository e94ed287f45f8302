"""Where handlers run: bounded reads (segment GET) and bounded writes (a
segment's create, rename, delete) on the event loop only when that cannot
block it (SQLite; a read connection free; for a write, the write connection
free and SQLite's lock taken at once), everything else in the thread pool,
within the handler slots (few threads; SQLite writes one at a time)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest

from segmentd.api import segments as segment_routes
from segmentd.api.runtime import HandlerSlots, Runtime
from segmentd.db.base import Database
from tests.client import Api
from tests.conftest import make_settings

POOL_THREAD = "AnyIO worker thread"


def threads_of(monkeypatch: pytest.MonkeyPatch, service: str) -> list[str]:
    """The name of the thread each call of ``segments.<service>`` runs in.

    Spied on by name inside ``services.segments``: routes hold their loaders
    (``segments.read``) directly, so the spy sits on what those call.
    """
    seen: list[str] = []
    real: Callable[..., Any] = getattr(segment_routes.segments, service)

    def spy(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(segment_routes.segments, service, spy)
    return seen


@pytest.fixture
def read_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return threads_of(monkeypatch, "_shown")  # what segments.read calls for a GET


@pytest.fixture
def segment_url(api: Api) -> str:
    net = api.create_network(name="n")
    return f"/v2.0/segments/{api.create_segment(net['id'], network_type='vxlan')['id']}"


def _get(api: Api, url: str) -> None:
    resp = api.get(url)
    assert resp.status_code == 200, resp.text
    assert resp.json()["segment"]["network_type"] == "vxlan"


def test_segment_get_runs_on_the_loop_on_sqlite_only(
    api: Api, segment_url: str, is_postgres: bool, read_threads: list[str]
) -> None:
    _get(api, segment_url)
    assert (read_threads == [POOL_THREAD]) is is_postgres, read_threads


def test_a_busy_read_pool_sends_it_to_the_thread_pool(
    api: Api,
    runtime: Runtime,
    segment_url: str,
    read_threads: list[str],
    is_postgres: bool,
) -> None:
    engine = runtime.db.reader
    held = [engine.connect() for _ in range(engine.pool.size())]
    try:
        assert not runtime.reads_inline()
        _get(api, segment_url)  # overflow connections still serve it, off the loop
    finally:
        for conn in held:
            conn.close()
    assert read_threads == [POOL_THREAD]
    assert runtime.reads_inline() is not is_postgres


def test_unbounded_reads_never_run_on_the_loop(
    api: Api, segment_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = threads_of(monkeypatch, "_records")  # what segments.list_ calls
    assert api.get("/v2.0/segments").status_code == 200
    assert seen == [POOL_THREAD]


def _rename(api: Api, url: str, name: str) -> None:
    resp = api.put(url, {"segment": {"name": name}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["segment"]["name"] == name


def test_a_rename_runs_on_the_loop_on_sqlite_only(
    api: Api, segment_url: str, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = threads_of(monkeypatch, "update")
    _rename(api, segment_url, "on-the-loop")
    assert (seen == [POOL_THREAD]) is is_postgres, seen
    assert api.get(segment_url).json()["segment"]["name"] == "on-the-loop"


@pytest.fixture
def sqlite_path(runtime: Runtime, is_postgres: bool) -> str:
    if is_postgres:
        pytest.skip("SQLite's write lock")
    path = runtime.db.writer.url.database
    assert path
    return path


def test_a_write_lock_held_elsewhere_sends_the_write_to_a_thread(
    api: Api,
    runtime: Runtime,
    segment_url: str,
    sqlite_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process holds SQLite's lock: the write on the loop gives up
    before doing anything, waits for the lock in a handler thread, and
    lands once the lock is released."""
    seen = threads_of(monkeypatch, "update")
    waiting = threading.Event()
    real = Database.transaction

    def spy(self: Database, write: bool, nowait: bool = False) -> Any:
        if write and not nowait:
            waiting.set()  # the fallback, about to wait for the lock
        return real(self, write, nowait)

    monkeypatch.setattr(Database, "transaction", spy)
    other = sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    def release() -> None:
        waiting.wait(timeout=30)
        other.execute("ROLLBACK")

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        _rename(api, segment_url, "after-the-wait")
    finally:
        releaser.join()
        other.close()
    assert waiting.is_set()
    assert seen == [POOL_THREAD]
    assert api.get(segment_url).json()["segment"]["name"] == "after-the-wait"
    with runtime.db.writer.connect() as conn:  # the lock wait is back for every writer
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout == runtime.settings.sqlite_busy_timeout_ms


def test_handler_slots_follow_the_database() -> None:
    sqlite = HandlerSlots.for_settings(make_settings("sqlite:////tmp/x.db"))
    postgres = HandlerSlots.for_settings(make_settings("postgresql+psycopg://h/db"))
    sized = HandlerSlots.for_settings(make_settings("sqlite:////tmp/x.db", handler_threads=5))

    async def limits(slots: HandlerSlots) -> tuple[float, float, bool]:
        reads, writes = slots.limiter(write=False), slots.limiter(write=True)
        return reads.total_tokens, writes.total_tokens, reads is writes

    assert asyncio.run(limits(sqlite)) == (2, 1, False)  # one writer: writes queue in the loop
    assert asyncio.run(limits(postgres)) == (3, 3, True)
    assert asyncio.run(limits(sized))[0] == 5


def test_each_event_loop_gets_its_own_limiters() -> None:
    slots = HandlerSlots(2)

    async def reads() -> object:
        return slots.limiter(write=False)

    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first = loop_a.run_until_complete(reads())
        assert loop_a.run_until_complete(reads()) is first
        assert loop_b.run_until_complete(reads()) is not first
    finally:
        loop_a.close()
        loop_b.close()
