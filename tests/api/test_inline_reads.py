"""Bounded reads (segment GET) run on the event loop only when that cannot block it:
on SQLite with a read connection free.  Otherwise they cross to the thread pool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from segmentd.api import segments as segment_routes
from segmentd.api.deps import Runtime
from tests.client import Api

POOL_THREAD = "AnyIO worker thread"


@pytest.fixture
def read_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread each segment GET's service call ran in."""
    seen: list[str] = []
    real = segment_routes.segments.read

    def spy(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(segment_routes.segments, "read", spy)
    return seen


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
    api: Api, runtime: Runtime, segment_url: str, read_threads: list[str],
    is_postgres: bool,
) -> None:
    engine = runtime.read_sessions.kw["bind"]
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
    seen: list[str] = []
    real: Callable[..., Any] = segment_routes.segments.list_

    def spy(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(segment_routes.segments, "list_", spy)
    assert api.get("/v2.0/segments").status_code == 200
    assert seen == [POOL_THREAD]
