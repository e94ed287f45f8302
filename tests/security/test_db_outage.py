"""Losing PostgreSQL mid-test answers 503 + Retry-After, and the service recovers.

PostgreSQL is shared with other engineers, so it is never stopped: the
service under test reaches it through a small TCP forwarder started here.
Cutting the forwarder (listener closed, every connection dropped) is the
outage; reopening it on the same port is the recovery, without restarting or
rebuilding the service.  Runs in the PostgreSQL pass (``make test`` runs both).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from segmentd.main import build_runtime, create_app
from tests.client import Api
from tests.conftest import make_settings
from tests.server import free_port
from tests.support import LEAKS


class Forwarder:
    """A TCP forwarder on 127.0.0.1:<port> to a target, that can be cut and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread.start()

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    async def _open(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()  # the connection drops, as when the server dies
        self.writers.clear()

    def open(self) -> None:
        self._run(self._open())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def forwarded(database_url: str, is_postgres: bool) -> Iterator[tuple[Forwarder, str]]:
    if not is_postgres:
        pytest.skip("needs PostgreSQL: runs in the PostgreSQL pass (SEGMENTD_TEST_DATABASE_URL)")
    url = make_url(database_url)
    forwarder = Forwarder(url.host or "127.0.0.1", url.port or 5432)
    forwarder.open()
    yield (
        forwarder,
        url.set(host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False),
    )
    forwarder.close()


def _assert_unavailable(resp: Any) -> None:
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.json()["NeutronError"]["type"] == "ServiceUnavailable"
    assert not LEAKS.search(resp.text), resp.text


def test_database_loss_is_503_and_recovery_needs_no_restart(
    forwarded: tuple[Forwarder, str], caplog: pytest.LogCaptureFixture
) -> None:
    forwarder, url = forwarded
    runtime = build_runtime(make_settings(url))
    try:
        with Api.for_app(create_app(runtime=runtime)) as api:
            net = api.create_network(name="before")
            assert api.get("/v2.0/networks").status_code == 200
            # A segment show reads without a Session (db.snapshot): same answers.
            seg = api.create_segment(network_id=net["id"], network_type="vxlan")
            assert api.get(f"/v2.0/segments/{seg['id']}").status_code == 200

            forwarder.cut()  # PostgreSQL "goes away": pooled connections die
            with caplog.at_level(logging.WARNING, logger="segmentd.faults"):
                _assert_unavailable(api.get("/v2.0/networks"))
                _assert_unavailable(api.post("/v2.0/networks", {"network": {"name": "during"}}))
                _assert_unavailable(api.get(f"/v2.0/networks/{net['id']}"))
                _assert_unavailable(api.get(f"/v2.0/segments/{seg['id']}"))
            assert any("database unavailable" in r.getMessage() for r in caplog.records)

            forwarder.open()  # it is back: the same app serves again
            resp = api.get("/v2.0/networks")
            assert resp.status_code == 200, resp.text
            assert [n["name"] for n in resp.json()["networks"]] == ["before"]
            assert api.get(f"/v2.0/segments/{seg['id']}").json()["segment"]["id"] == seg["id"]
            assert api.post("/v2.0/networks", {"network": {"name": "after"}}).status_code == 201
    finally:
        runtime.db.writer.dispose()
