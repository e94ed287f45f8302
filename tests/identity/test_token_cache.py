"""The per-process validation cache: bounded, short-lived, never past expiry."""

from __future__ import annotations

import datetime as dt

from segmentd.identity.tokens import TokenCache, TokenInfo

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def info(expires_in: float = 3600) -> TokenInfo:
    return TokenInfo(
        "u",
        "user",
        "default",
        "p",
        "project",
        "default",
        ("member",),
        "token",
        ("password",),
        "audit",
        NOW,
        NOW + dt.timedelta(seconds=expires_in),
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_hits_until_ttl_then_misses() -> None:
    clock = FakeClock()
    cache = TokenCache(5, clock=clock)
    cache.put("d", info())
    assert cache.get("d", NOW) == info()
    clock.now = 5.1
    assert cache.get("d", NOW) is None


def test_never_serves_an_expired_token() -> None:
    cache = TokenCache(60, clock=FakeClock())
    cache.put("d", info(expires_in=1))
    assert cache.get("d", NOW + dt.timedelta(seconds=2)) is None


def test_discard_and_disabled_and_bounded() -> None:
    cache = TokenCache(60, max_entries=3, clock=FakeClock())
    cache.put("d", info())
    cache.discard("d")
    assert cache.get("d", NOW) is None
    for i in range(10):
        cache.put(str(i), info())
    assert len(cache._entries) <= 3
    off = TokenCache(0, clock=FakeClock())
    off.put("d", info())
    assert off.get("d", NOW) is None
