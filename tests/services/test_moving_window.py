"""The in-process moving-window limiter: the same decisions as ``limits``'
memory storage, with a fake clock, plus the bound on its key table."""

from __future__ import annotations

import pytest

from segmentd.ratelimit import InProcessMovingWindow, LimitsRateLimiter, build_limiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_allows_the_rate_then_refuses_until_the_oldest_hit_leaves(clock: Clock) -> None:
    limiter = InProcessMovingWindow(clock)
    decisions = []
    for _ in range(3):
        decisions.append(limiter.hit("k", "3/minute"))
        clock.now += 10
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    refused = limiter.hit("k", "3/minute")
    assert (refused.allowed, refused.remaining, refused.limit, refused.window_s) == (
        False,
        0,
        3,
        60,
    )
    assert refused.reset_s == 30  # the first hit (t=1000) leaves the window at t=1060
    clock.now = 1060.0
    assert limiter.hit("k", "3/minute").allowed
    assert not limiter.hit("k", "3/minute").allowed  # t=1010 and t=1020 are still inside


def test_refused_hits_do_not_consume(clock: Clock) -> None:
    limiter = InProcessMovingWindow(clock)
    assert limiter.hit("k", "1/second").allowed
    for _ in range(5):
        assert not limiter.hit("k", "1/second").allowed
    clock.now += 1.0
    assert limiter.hit("k", "1/second").allowed


def test_peek_says_whether_one_more_would_pass_without_consuming(clock: Clock) -> None:
    limiter = InProcessMovingWindow(clock)
    assert limiter.peek("k", "2/minute").allowed
    limiter.hit("k", "2/minute")
    assert limiter.peek("k", "2/minute").remaining == 1
    limiter.hit("k", "2/minute")
    assert not limiter.peek("k", "2/minute").allowed
    assert limiter.peek("other", "2/minute").remaining == 2


def test_buckets_are_per_key(clock: Clock) -> None:
    limiter = InProcessMovingWindow(clock)
    assert limiter.hit("a", "1/minute").allowed
    assert limiter.hit("b", "1/minute").allowed
    assert not limiter.hit("a", "1/minute").allowed


def test_keys_whose_window_passed_are_swept(clock: Clock) -> None:
    limiter = InProcessMovingWindow(clock)
    for i in range(1024):
        limiter.hit(f"caller-{i}", "5/second")
    clock.now += 2
    for i in range(1024):  # the table doubles; that sweep drops the whole first wave
        limiter.hit(f"later-{i}", "5/second")
    assert len(limiter._hits) <= 1024


def test_the_default_storage_and_strategy_get_the_in_process_limiter() -> None:
    assert isinstance(build_limiter("memory://", "moving-window", "p", True), InProcessMovingWindow)
    other = build_limiter("memory://", "fixed-window", "p", True)
    assert isinstance(other, LimitsRateLimiter)
    assert not InProcessMovingWindow().blocking
    assert other.blocking is False
    assert build_limiter("redis://127.0.0.1:1/0", "moving-window", "p", True).blocking
