"""Rate limits per principal, per address, per failed-login user name; shared via Redis.

Redis tests use ``SEGMENTD_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``) and a fresh key prefix per test; they are
skipped only when ``SEGMENTD_TEST_NO_REDIS=1`` says Redis is absent on purpose.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from segmentd.api.runtime import Runtime
from segmentd.main import build_runtime, create_app
from segmentd.ratelimit import LimitsRateLimiter, RatePolicy
from tests.client import Api
from tests.conftest import make_settings
from tests.identity_support import Identity, TokenApi, client_for, password_body
from tests.server import free_port, running_server

REDIS_URL = os.environ.get("SEGMENTD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
needs_redis = pytest.mark.skipif(
    os.environ.get("SEGMENTD_TEST_NO_REDIS") == "1",
    reason="SEGMENTD_TEST_NO_REDIS=1: no Redis here",
)
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def as_user(api: Api, user: str) -> Callable[[str], Any]:
    return lambda path: api.get(path, headers={"X-User-Id": user})


def assert_429(resp: Any) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.json()["NeutronError"]["type"] == "RateLimited"
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.headers["RateLimit-Remaining"] == "0"
    assert all(h in resp.headers for h in RATE_HEADERS)


def test_flood_from_one_principal_does_not_starve_another(make_api: Callable[..., Api]) -> None:
    api = make_api(ratelimit_read="5/minute")
    alice, bob = as_user(api, "alice"), as_user(api, "bob")
    remaining = []
    for _ in range(5):
        resp = alice("/v2.0/networks")
        assert resp.status_code == 200
        assert resp.headers["RateLimit-Limit"] == "5"
        assert resp.headers["RateLimit-Policy"] == "5;w=60"
        assert 0 < int(resp.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(resp.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    for i in range(20):
        assert_429(alice("/v2.0/networks"))
        if i % 5 == 0:  # bob keeps being served throughout alice's flood
            assert bob("/v2.0/networks").status_code == 200


def test_classes_have_separate_buckets(make_api: Callable[..., Api]) -> None:
    api = make_api(ratelimit_write="2/minute", ratelimit_read="100/minute")
    headers = {"X-User-Id": "carol"}
    for i in range(2):
        assert (
            api.post("/v2.0/networks", {"network": {"name": f"n{i}"}}, headers=headers).status_code
            == 201
        )
    refused = api.post("/v2.0/networks", {"network": {"name": "n3"}}, headers=headers)
    assert_429(refused)
    listed = api.get("/v2.0/networks", headers=headers)
    assert listed.status_code == 200
    assert sorted(n["name"] for n in listed.json()["networks"]) == [
        "n0",
        "n1",
    ]  # n3 was never created


def test_role_override_is_the_most_generous(make_api: Callable[..., Api]) -> None:
    api = make_api(ratelimit_read="2/minute", ratelimit_roles={"admin": {"read": "50/minute"}})
    admin = api.as_("p", "admin,member")
    member = api.as_("p", "member")
    for _ in range(10):
        assert admin.get("/v2.0/networks", headers={"X-User-Id": "boss"}).status_code == 200
    codes = [
        member.get("/v2.0/networks", headers={"X-User-Id": "dave"}).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_rate_limiting_can_be_disabled(make_api: Callable[..., Api]) -> None:
    api = make_api(ratelimit_enabled=False, ratelimit_read="1/minute")
    for _ in range(5):
        resp = api.get("/v2.0/networks")
        assert resp.status_code == 200
        assert "RateLimit-Limit" not in resp.headers


@pytest.fixture
def token_world(database_url: str) -> Iterator[Callable[..., tuple[TokenApi, Identity]]]:
    made: list[tuple[Any, Runtime]] = []

    def factory(**overrides: Any) -> tuple[TokenApi, Identity]:
        rt = build_runtime(make_settings(database_url, auth_strategy="token", **overrides))
        client = client_for(create_app(runtime=rt))
        made.append((client, rt))
        return TokenApi(client, None), Identity(rt)

    yield factory
    for client, rt in made:
        client.close()
        rt.db.writer.dispose()


def test_unauthenticated_requests_are_limited_per_address(
    token_world: Callable[..., tuple[TokenApi, Identity]],
) -> None:
    web, _ = token_world(ratelimit_anonymous="3/minute")
    codes = [web.with_token("guess-" + str(i)).get("/v2.0/networks").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    assert web.get("/v2.0/networks").status_code == 429


def test_failed_logins_are_limited_per_user_name(
    token_world: Callable[..., tuple[TokenApi, Identity]],
) -> None:
    web, ident = token_world(ratelimit_login="3/minute")
    project = ident.project("p")
    ident.user("alice", "right-password", project, "member")
    ident.user("bob", "bobs-password", project, "member")
    scope = {"name": "p", "domain": {"id": "default"}}

    def login(user: str, password: str) -> int:
        body = password_body(password, {"name": user, "domain": {"id": "default"}}, scope)
        resp = web.post("/identity/v3/auth/tokens", body)
        if resp.status_code == 429:
            assert resp.json()["error"]["code"] == 429  # Keystone's error shape
            assert resp.headers["Retry-After"]
        return resp.status_code

    # Successful logins are not failures: they never use up the budget.
    assert [login("alice", "right-password") for _ in range(5)] == [201] * 5
    assert [login("alice", f"guess{i}") for i in range(3)] == [401, 401, 401]
    # Spent: even the right password is refused until the window moves on.
    assert login("alice", "right-password") == 429
    assert login("alice", "guess4") == 429
    # Another user name has its own budget.
    assert login("bob", "bobs-password") == 201
    assert login("bob", "wrong") == 401


def test_policy_picks_most_generous_role() -> None:
    policy = RatePolicy(
        {"read": "10/minute"}, {"admin": {"read": "100/second"}, "member": {"read": "600/minute"}}
    )
    assert policy.rate("read", []) == "10/minute"
    assert policy.rate("read", ["reader"]) == "10/minute"
    assert policy.rate("read", ["member"]) == "600/minute"
    assert policy.rate("read", ["member", "admin"]) == "100/second"


# Redis: shared counters, outages -------------------------------------------------------


@needs_redis
def test_redis_storage_is_shared_between_limiters() -> None:
    prefix = f"t-{uuid.uuid4().hex}"
    one, two = (LimitsRateLimiter(REDIS_URL, "moving-window", prefix) for _ in range(2))
    decisions = [(one if i % 2 else two).hit("user:x", "4/minute") for i in range(6)]
    assert [d.allowed for d in decisions] == [True] * 4 + [False] * 2
    assert not any(d.degraded for d in decisions)
    assert one.failures == two.failures == 0


@needs_redis
@pytest.mark.slow
def test_limits_are_shared_across_two_server_processes(database_url: str) -> None:
    env = {
        "SEGMENTD_RATELIMIT_STORAGE_URL": REDIS_URL,
        "SEGMENTD_RATELIMIT_KEY_PREFIX": f"t-{uuid.uuid4().hex}",
        "SEGMENTD_RATELIMIT_READ": "6/minute",
    }
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(database_url, env=env)) for _ in range(2)]
        servers = [stack.enter_context(Api.for_url(b)) for b in bases]
        codes = [
            servers[i % 2].get("/v2.0/networks", headers={"X-User-Id": "eve"}).status_code
            for i in range(10)
        ]
        # Six in total, not six per process.
        assert codes == [200] * 6 + [429] * 4
        for server in servers:
            assert_429(server.get("/v2.0/networks", headers={"X-User-Id": "eve"}))
            assert server.get("/v2.0/networks", headers={"X-User-Id": "frank"}).status_code == 200


def test_unreachable_redis_fails_open_and_counts(make_api: Callable[..., Api]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    limiter = LimitsRateLimiter(url, "moving-window", "t", fail_open=True)
    decision = limiter.hit("user:x", "1/minute")
    assert decision.allowed and decision.degraded
    assert limiter.failures == 1
    api = make_api(ratelimit_storage_url=url, ratelimit_read="1/minute")
    for _ in range(3):
        resp = api.get("/v2.0/networks")
        assert resp.status_code == 200
        assert "RateLimit-Limit" not in resp.headers  # no counters, no claims about them


def test_unreachable_redis_can_fail_closed(make_api: Callable[..., Api]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    api = make_api(ratelimit_storage_url=url, ratelimit_fail_open=False)
    resp = api.get("/v2.0/networks")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.json()["NeutronError"]["type"] == "RateLimiterUnavailable"
    assert "redis" not in resp.text.lower()
