"""The Keystone validation cache: bounded, never past the TTL or the token's
end, shared between workers through Redis without being forgeable there."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from segmentd.identity.keystone import AccessRule, ValidatedToken
from segmentd.identity.keystone_cache import LocalTokens, TokenCache, shared_secret

REDIS_URL = os.environ.get("SEGMENTD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
needs_redis = pytest.mark.skipif(
    os.environ.get("SEGMENTD_TEST_NO_REDIS") == "1",
    reason="SEGMENTD_TEST_NO_REDIS=1: no Redis here",
)
CODEC = (ValidatedToken.to_json, ValidatedToken.from_json)
EXPIRES = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token(**changes: Any) -> ValidatedToken:
    base: dict[str, Any] = {
        "user_id": "u1",
        "user_name": "alice",
        "user_domain_id": "default",
        "expires_at": EXPIRES,
        "roles": ("member", "reader"),
        "project_id": "p1",
        "project_name": "alpha",
        "project_domain_id": "default",
    }
    return ValidatedToken(**{**base, **changes})


def test_local_table_is_bounded_and_drops_expired_entries_first() -> None:
    clock = Clock()
    table: LocalTokens[str] = LocalTokens(3, clock)
    table.put("old", "x", clock.now + 1)
    table.put("a", "a", clock.now + 100)
    table.put("b", "b", clock.now + 100)
    clock.now += 2  # "old" has expired
    table.put("c", "c", clock.now + 100)
    assert (len(table), table.get("a"), table.get("old")) == (3, "a", None)
    table.put("d", "d", clock.now + 100)  # full of live entries: the oldest goes
    assert (len(table), table.get("a"), table.get("d")) == (3, None, "d")


def test_an_entry_lives_the_ttl_and_never_past_the_tokens_end() -> None:
    clock = Clock()
    cache: TokenCache[ValidatedToken] = TokenCache(300, clock=clock)
    key = cache.key("tok")
    cache.put(key, token(), expires=clock.now + 60)  # the token ends before the TTL
    assert cache.until(key) == clock.now + 60
    clock.now += 59
    assert cache.local(key) == token()
    clock.now += 1
    assert cache.local(key) is None
    cache.put(key, token(), expires=clock.now + 3600)
    assert cache.until(key) == clock.now + 300
    cache.put(cache.key("gone"), token(), expires=clock.now - 1)  # already over: not kept
    assert cache.local(cache.key("gone")) is None


def test_json_round_trip_keeps_every_attribute() -> None:
    rules = (AccessRule("network", "GET", "/v2.0/networks"),)
    full = token(system_scope="all", application_credential_id="ac", access_rules=rules)
    assert ValidatedToken.from_json(full.to_json()) == full
    assert ValidatedToken.from_json(token().to_json()) == token()


def test_keystone_token_body_becomes_a_validated_token() -> None:
    body = {
        "user": {"id": "u1", "name": "alice", "domain": {"id": "default"}},
        "project": {"id": "p1", "name": "alpha", "domain": {"id": "default"}},
        "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}],
        "expires_at": "2026-11-27T12:00:00.000000Z",
        "application_credential": {
            "id": "ac",
            "access_rules": [{"service": "network", "method": "GET", "path": "/v2.0/**"}],
        },
    }
    found = ValidatedToken.from_keystone(body)
    assert found.expires_at == EXPIRES
    assert (found.project_id, found.roles, found.application_credential_id) == (
        "p1",
        ("member", "reader"),
        "ac",
    )
    (rule,) = found.access_rules or ()
    assert rule.allows("network", "GET", "/v2.0/networks/abc")
    assert not rule.allows("network", "POST", "/v2.0/networks")
    assert not rule.allows("compute", "GET", "/v2.0/networks")
    system = ValidatedToken.from_keystone({**body, "project": None, "system": {"all": True}})
    assert (system.project_id, system.system_scope) == (None, "all")


@pytest.mark.parametrize(
    ("rule", "path", "allowed"),
    [
        ("/v2.0/networks", "/v2.0/networks", True),
        ("/v2.0/networks", "/v2.0/networks/x", False),
        ("/v2.0/networks/*", "/v2.0/networks/x", True),
        ("/v2.0/networks/*", "/v2.0/networks/x/y", False),
        ("/v2.0/networks/{network_id}", "/v2.0/networks/x", True),
        ("/v2.0/**", "/v2.0/segments/x/hosts", True),
        ("/v2.0/net.orks", "/v2.0/networks", False),  # literal, not a regex
    ],
)
def test_access_rule_paths_match_as_keystonemiddleware_does(
    rule: str, path: str, allowed: bool
) -> None:
    assert AccessRule("network", "GET", rule).allows("network", "GET", path) is allowed


@pytest.fixture
def shared() -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test-{secrets.token_hex(4)}:"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _worker(
    store: tuple[redis.Redis, str],
    clock: Clock,
    password: str = "pw",  # noqa: S107 - test data
) -> TokenCache[ValidatedToken]:
    client, prefix = store
    return TokenCache(
        300, shared=client, secret=shared_secret(password), prefix=prefix, clock=clock, codec=CODEC
    )


@needs_redis
def test_workers_share_validations_with_the_first_deadline(shared: Any) -> None:
    clock = Clock()
    first, second = _worker(shared, clock), _worker(shared, clock)
    key = first.key("tok")
    assert key == second.key("tok")
    first.put(key, token(), expires=clock.now + 3600)
    clock.now += 200
    assert second.get(key) == token()
    # The second worker keeps it until the first deadline, not for 300 s more.
    assert second.until(key) == clock.now + 100
    clock.now += 100
    assert second.local(key) is None


@needs_redis
def test_an_entry_forged_in_redis_is_ignored(shared: Any) -> None:
    client, prefix = shared
    clock = Clock()
    honest = _worker(shared, clock)
    key = honest.key("tok")
    honest.put(key, token(), expires=clock.now + 3600)
    stored = client.get(prefix + key)
    signature, _, payload = stored.partition(b".")
    promoted = payload.replace(b'"member","reader"', b'"admin"')
    assert promoted != payload
    client.set(prefix + key, signature + b"." + promoted)
    assert _worker(shared, clock).get(key) is None
    # Nor can anyone without the service password sign one.
    outsider = _worker(shared, clock, password="guess")  # noqa: S106 - test data
    outsider.put(key, token(roles=("admin",)), expires=clock.now + 3600)
    assert _worker(shared, clock).get(key) is None


def test_an_unreachable_shared_store_is_a_miss() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    clock = Clock()
    cache = TokenCache(300, shared=dead, secret=b"k", clock=clock, codec=CODEC)
    key = cache.key("tok")
    cache.put(key, token(), expires=clock.now + 3600)  # logged, not raised
    assert cache.get(key) == token()  # this process still has it
    assert TokenCache(300, shared=dead, secret=b"k", clock=clock, codec=CODEC).get(key) is None
