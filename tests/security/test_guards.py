"""Request guards: body size, page size, query caps, deadline, database timeouts."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import uvicorn
from sqlalchemy import Engine, text

from segmentd.main import create_app
from segmentd.services import networks, segments
from tests.client import Api
from tests.conftest import make_settings
from tests.server import free_port

MAX_BODY = 4096


def _network_body(size: int) -> bytes:
    body = orjson.dumps({"network": {"name": "n", "description": ""}})
    pad = size - len(body)
    return orjson.dumps({"network": {"name": "n", "description": "x" * pad}})


def test_oversized_body_is_refused_before_parsing(
    make_api: Callable[..., Api], snapshot: Callable[[], Any]
) -> None:
    api = make_api(max_request_body_bytes=MAX_BODY)
    before = snapshot()
    resp = api.post(
        "/v2.0/networks",
        content=_network_body(MAX_BODY + 1),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413, resp.text
    error = resp.json()["NeutronError"]
    assert error["type"] == "RequestBodyTooLarge"
    assert error["message"] == f"Request body is larger than {MAX_BODY} bytes."
    assert resp.headers["X-Openstack-Request-Id"].startswith("req-")
    # Not even valid JSON is looked at: size is checked first.
    garbage = api.post("/v2.0/networks", content=b"{" * (MAX_BODY + 1))
    assert garbage.status_code == 413
    assert snapshot() == before


def test_streamed_body_without_length_is_counted(
    make_api: Callable[..., Api], snapshot: Callable[[], Any]
) -> None:
    api = make_api(max_request_body_bytes=MAX_BODY)
    before = snapshot()
    chunks = [b'{"network": {"name": "', b"n" * 1000, b"n" * 1000, b"n" * 1000, b"n" * 1200, b'"}}']

    def stream() -> Iterator[bytes]:
        yield from chunks

    resp = api.post("/v2.0/networks", content=stream())
    assert resp.status_code == 413
    assert snapshot() == before


def test_body_at_the_limit_is_served(make_api: Callable[..., Api]) -> None:
    api = make_api(max_request_body_bytes=MAX_BODY)
    # Within the byte cap, the schema still bounds the description (400, not 413).
    resp = api.post(
        "/v2.0/networks",
        content=_network_body(MAX_BODY),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    ok = api.post("/v2.0/networks", {"network": {"name": "fits"}})
    assert ok.status_code == 201


def test_identity_routes_answer_413_in_keystone_shape(make_api: Callable[..., Api]) -> None:
    api = make_api(max_request_body_bytes=MAX_BODY, auth_strategy="token")
    resp = api.post("/identity/v3/auth/tokens", content=b" " * (MAX_BODY + 10))
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == 413


@pytest.fixture
def three_networks(api: Api) -> list[dict[str, Any]]:
    return [api.create_network(name=f"n{i}") for i in range(3)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 2),
        ("?limit=1", 1),
        ("?limit=2", 2),
        ("?limit=1000", 2),
        ("?limit=0", 2),
        ("?limit=99999999999999999999999", 2),
    ],
)
def test_page_size_is_clamped_to_the_maximum(
    make_api: Callable[..., Api], three_networks: list[dict[str, Any]], query: str, expected: int
) -> None:
    # The default (50) is above the maximum (2): the maximum wins.
    api = make_api(pagination_default_limit=50, pagination_max_limit=2)
    resp = api.get(f"/v2.0/networks{query}")
    assert resp.status_code == 200
    assert len(resp.json()["networks"]) == expected


def test_host_lists_clamp_too(make_api: Callable[..., Api]) -> None:
    api = make_api(pagination_default_limit=50, pagination_max_limit=2)
    assert api.get("/v2.0/segment-host-mappings?limit=100000").status_code == 200
    assert api.get("/v2.0/segment-host-mappings?limit=-1").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/v2.0/networks?limit=-1",
        "/v2.0/networks?limit=abc",
        "/v2.0/segments?" + "&".join(["name=x"] * 6),
        "/v2.0/segments?" + "&".join(f"sort_key={k}" for k in ("id", "name", "network_id")),
        "/v2.0/segments?fields=" + ",".join(["id"] * 4),
        "/v2.0/segment-host-mappings?" + "&".join(["include_agent_types=Open vSwitch agent"] * 6),
    ],
)
def test_query_caps(make_api: Callable[..., Api], path: str) -> None:
    api = make_api(max_filter_values=5, max_sort_keys=2, max_fields=3)
    resp = api.get(path)
    assert resp.status_code == 400, resp.text
    assert resp.json()["NeutronError"]["type"] in ("InvalidQuery", "HTTPBadRequest")


def slowed(real: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    """``real``, then a sleep: its change is made (flushed), not yet committed."""

    def slow(*args: Any, **kwargs: Any) -> Any:
        done = real(*args, **kwargs)
        time.sleep(seconds)
        return done

    return slow


def test_request_deadline_answers_503_and_commits_nothing(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch, snapshot: Callable[[], Any]
) -> None:
    # Margins wide enough for a loaded CI machine: the later fast request has
    # the same deadline.
    api = make_api(request_timeout_seconds=1.0)
    before = snapshot()
    real_create = networks.create
    monkeypatch.setattr(networks, "create", slowed(real_create, 2.0))
    started = time.monotonic()
    resp = api.post("/v2.0/networks", {"network": {"name": "slow"}})
    assert resp.status_code == 503, resp.text
    assert resp.json()["NeutronError"]["type"] == "RequestTimeout"
    assert resp.headers["Retry-After"] == "1"
    assert time.monotonic() - started >= 1.0
    # The handler finished after the answer and its transaction rolled back.
    assert snapshot() == before
    monkeypatch.setattr(networks, "create", real_create)
    assert api.post("/v2.0/networks", {"network": {"name": "fast"}}).status_code == 201


def test_a_write_on_the_loop_past_its_deadline_commits_nothing(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename runs on the event loop (SQLite), where the deadline's timer
    cannot interrupt it: it still commits nothing once the deadline passed,
    and is answered 503 when it ends."""
    api = make_api(request_timeout_seconds=1.0)
    net = api.create_network(name="n")
    seg = api.create_segment(net["id"], network_type="vxlan", name="before")
    real_update = segments.update
    monkeypatch.setattr(segments, "update", slowed(real_update, 1.5))
    resp = api.put(f"/v2.0/segments/{seg['id']}", {"segment": {"name": "late"}})
    assert resp.status_code == 503, resp.text
    assert resp.json()["NeutronError"]["type"] == "RequestTimeout"
    monkeypatch.setattr(segments, "update", real_update)
    shown = api.get(f"/v2.0/segments/{seg['id']}").json()["segment"]
    assert (shown["name"], shown["revision_number"]) == ("before", seg["revision_number"])


def test_deadline_answer_reaches_the_client_on_time_over_http(
    database_url: str, monkeypatch: pytest.MonkeyPatch, snapshot: Callable[[], Any]
) -> None:
    """Over a real connection the 503 leaves at the deadline, while the
    handler is still running; its change is rolled back when it ends."""
    app = create_app(make_settings(database_url, request_timeout_seconds=0.3))
    monkeypatch.setattr(networks, "create", slowed(networks.create, 4.0))
    before = snapshot()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            started = time.monotonic()
            conn.request(
                "POST",
                "/v2.0/networks",
                body=b'{"network": {"name": "slow"}}',
                headers={"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            elapsed = time.monotonic() - started
            assert resp.status == 503
            assert orjson.loads(resp.read())["NeutronError"]["type"] == "RequestTimeout"
            assert 0.3 <= elapsed < 3.0, elapsed  # well before the handler's 4 s
        finally:
            conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.runtime.close()  # its own pools: closed, not left to the garbage collector
    assert snapshot() == before


def test_database_timeouts_are_set_on_every_connection(engine: Engine, is_postgres: bool) -> None:
    with engine.connect() as conn:
        if is_postgres:
            # The product's own engine, not a test path: every pooled connection
            # carries the statement timeout from settings (10 s by default).
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "10s"
        else:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000


def test_statement_timeout_follows_the_setting(
    make_api: Callable[..., Api], database_url: str, is_postgres: bool
) -> None:
    from segmentd.db.base import make_engine

    engine = make_engine(database_url, statement_timeout_ms=1500, busy_timeout_ms=2500)
    try:
        with engine.connect() as conn:
            if is_postgres:
                assert conn.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
            else:
                assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 2500
    finally:
        engine.dispose()
