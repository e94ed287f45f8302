"""Issue 15, the items the request pipeline closes: each test fails before it.

4. a login never hashes a password inside a transaction, and hashes are
   bounded per process;
5. callers are authenticated and rate-limited before their body is parsed;
6. agent tokens cannot reach the identity API;
11. failed logins from one address cannot lock the user out elsewhere;
12. request bodies are strictly typed;
13. anonymous denials are aggregated in the audit trail;
14. identity calls with bad tokens count against the address; the API
    schema is for authenticated callers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from segmentd.api.runtime import Runtime
from segmentd.db.audit import AuditEvent
from segmentd.identity.passwords import Passwords
from segmentd.main import build_runtime, create_app
from tests.conftest import make_settings
from tests.identity_support import Identity, TokenApi, password_body

PASSWORD = "correct horse battery staple"  # noqa: S105 - test data
DEFAULT = {"name": "Default"}


@pytest.fixture
def make_web(database_url: str) -> Iterator[Callable[..., tuple[Runtime, Callable[..., TokenApi]]]]:
    """A token-mode app with ``overrides``; clients from chosen addresses."""
    made: list[tuple[Runtime, list[TestClient]]] = []

    def factory(**overrides: Any) -> tuple[Runtime, Callable[..., TokenApi]]:
        rt = build_runtime(make_settings(database_url, auth_strategy="token", **overrides))
        app, clients = create_app(runtime=rt), []
        made.append((rt, clients))

        def client(address: str = "198.51.100.7", token: str | None = None) -> TokenApi:
            # Entered: its requests share one event loop, as a worker's do.
            test_client = TestClient(app, raise_server_exceptions=False, client=(address, 5000))
            clients.append(test_client.__enter__())
            return TokenApi(test_client, token)

        return rt, client

    yield factory
    for rt, clients in made:
        for c in clients:
            c.__exit__(None, None, None)
        rt.close()


@pytest.fixture
def people(runtime: Runtime) -> dict[str, Any]:
    ident = Identity(runtime)
    demo = ident.project("demo")
    alice = ident.user("alice", PASSWORD, demo, "member")
    agent_user = ident.user("agent", None, demo, "service")
    return {
        "demo": demo,
        "alice": alice,
        "alice_token": ident.token(alice, demo),
        "agent_token": ident.token(agent_user, demo, kind="agent"),
    }


def _login(web: TokenApi, password: str = PASSWORD, user: str = "alice") -> Any:
    body = password_body(
        password, {"name": user, "domain": DEFAULT}, {"name": "demo", "domain": DEFAULT}
    )
    return web.client.post("/identity/v3/auth/tokens", json=body)


# 4 ---------------------------------------------------------------------------------


@contextmanager
def _watching_hashes(monkeypatch: pytest.MonkeyPatch, rt: Runtime) -> Iterator[list[Any]]:
    """Records, at every password verification, the connections held and
    the hashes running at the same time; each takes a little while."""
    seen: list[Any] = []
    running = [0]
    lock = threading.Lock()
    real = Passwords.verify

    def verify(self: Passwords, stored: str | None, password: str) -> bool:
        with lock:
            running[0] += 1
            held = (rt.db.writer.pool.checkedout(), rt.db.reader.pool.checkedout())
            seen.append((held, running[0]))
        try:
            time.sleep(0.2)
            return real(self, stored, password)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(Passwords, "verify", verify)
    yield seen


def test_login_hashes_outside_any_transaction_one_at_a_time(
    make_web: Callable[..., Any], people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, client = make_web(password_hash_concurrency=1)
    web = client()  # one worker's event loop
    with _watching_hashes(monkeypatch, rt) as seen:
        assert _login(web).status_code == 201
    # Alone, it held no connection while hashing: no transaction, no write slot.
    assert [held for held, _ in seen] == [(0, 0)]
    with _watching_hashes(monkeypatch, rt) as seen:
        results: list[int] = []
        logins = [
            threading.Thread(target=lambda: results.append(_login(web).status_code))
            for _ in range(3)
        ]
        for t in logins:
            t.start()
        for t in logins:
            t.join(timeout=30)
    assert sorted(results) == [201, 201, 201]
    assert max(running for _, running in seen) == 1  # three at once: one hash at a time


# 5 ---------------------------------------------------------------------------------


def test_anonymous_bodies_are_refused_before_parsing(
    make_web: Callable[..., Any], engine: Engine
) -> None:
    _, client = make_web()
    anonymous = client()
    for body in (b"{not json", b'{"network": {"shared": "yes", "bogus": 1}}'):
        resp = anonymous.client.post(
            "/v2.0/networks", content=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 401, resp.text
    # A rate-limited caller too: 429 before its body is looked at.
    rt, client = make_web(ratelimit_write="1/minute")
    ident = Identity(rt)
    project = ident.project("p")
    token = ident.token(ident.user("u", None, project, "member"), project)
    member = client(token=token)
    assert member.post("/v2.0/networks", {"network": {"name": "a"}}).status_code == 201
    resp = member.client.post(
        "/v2.0/networks", content=b"{not json", headers={"X-Auth-Token": token}
    )
    assert resp.status_code == 429, resp.text


# 6 ---------------------------------------------------------------------------------


def test_agent_tokens_cannot_reach_the_identity_api(
    make_web: Callable[..., Any], people: dict[str, Any]
) -> None:
    _, client = make_web()
    agent = client(token=people["agent_token"])
    victim = {"X-Subject-Token": people["alice_token"]}
    assert agent.get("/identity/v3/auth/tokens", headers=victim).status_code == 403
    assert agent.delete("/identity/v3/auth/tokens", headers=victim).status_code == 403
    assert agent.get("/identity/v3/projects").status_code == 403
    # The victim's token still works.
    alice = client(token=people["alice_token"])
    assert alice.get("/v2.0/networks").status_code == 200


# 11 --------------------------------------------------------------------------------


def test_failed_logins_elsewhere_do_not_lock_the_user_out(
    make_web: Callable[..., Any], people: dict[str, Any]
) -> None:
    _, client = make_web(ratelimit_login="3/minute")
    attacker, owner = client("203.0.113.66"), client("198.51.100.20")
    assert [_login(attacker, "wrong").status_code for _ in range(3)] == [401] * 3
    assert _login(attacker, "wrong").status_code == 429
    assert _login(attacker).status_code == 429  # guessing from there stays slowed
    assert _login(owner).status_code == 201  # the real user, elsewhere, logs in


# 12 --------------------------------------------------------------------------------


def test_integers_may_come_as_plain_decimal_strings(api: Any) -> None:
    """The openstack CLI sends ``--provider-segment 101`` as ``"101"``."""
    network = {
        "provider:network_type": "vlan",
        "provider:physical_network": "physnet1",
        "provider:segmentation_id": "1101",
    }
    created = api.post("/v2.0/networks", {"network": network})
    assert created.status_code == 201, created.text
    assert created.json()["network"]["provider:segmentation_id"] == 1101


@pytest.mark.parametrize(
    "network",
    [
        {
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": True,
        },
        {
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": 150.0,
        },
        {
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": " 152",
        },
        {"name": "n", "shared": "yes"},
        {"name": "n", "admin_state_up": 1},
        {"name": 5},
    ],
)
def test_request_bodies_are_strictly_typed(
    api: Any, snapshot: Callable[[], Any], network: dict[str, Any]
) -> None:
    before = snapshot()
    resp = api.post("/v2.0/networks", {"network": network})
    assert resp.status_code == 400, resp.text
    assert snapshot() == before


# 13 --------------------------------------------------------------------------------


def _denials(engine: Engine) -> list[AuditEvent]:
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent).where(AuditEvent.action == "deny")).all()
    return sorted(rows, key=lambda r: r.created_at)


def test_anonymous_denials_are_aggregated(make_web: Callable[..., Any], engine: Engine) -> None:
    _, client = make_web(audit_denial_window_seconds=0.5, ratelimit_anonymous="1000/minute")
    anonymous = client("192.0.2.50")
    for _ in range(20):
        assert anonymous.post("/v2.0/networks", {"network": {}}).status_code == 401
    [first] = _denials(engine)
    assert (first.detail, first.permission) == ("not_authenticated", "create_network")
    deadline = time.monotonic() + 10  # the window's count is written when it closes
    while len(_denials(engine)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    _, summary = _denials(engine)
    assert summary.detail == "not_authenticated_repeated"
    assert summary.after == {"client_address": "192.0.2.50", "count": 19, "window_seconds": 0.5}


# 14 --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/identity/v3/auth/tokens", "/identity/v3/projects"])
def test_identity_calls_with_bad_tokens_count_against_the_address(
    make_web: Callable[..., Any], path: str
) -> None:
    _, client = make_web(ratelimit_anonymous="5/minute")
    guesser = client(token="not-a-token")  # noqa: S106 - a bogus token on purpose
    codes = [guesser.get(path, headers={"X-Subject-Token": "x"}).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]


def test_the_api_schema_is_for_authenticated_callers(
    make_web: Callable[..., Any], people: dict[str, Any]
) -> None:
    _, client = make_web()
    assert client().get("/openapi.json").status_code == 401
    schema = client(token=people["alice_token"]).get("/openapi.json")
    assert schema.status_code == 200
    assert "/v2.0/segments" in schema.json()["paths"]
    assert client().get("/docs").status_code == 404
