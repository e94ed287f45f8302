"""Rate limiting: a small limiter interface over the ``limits`` library.

``RateLimiter.hit(key, rate)`` consumes one unit from the bucket ``key`` and
returns a ``Decision`` (allowed, limit, remaining, seconds to reset) that the
API turns into 429s and ``RateLimit-*`` headers.  Storage is in-memory (one
process) or Redis (``redis://``: counters shared by every worker).

When the storage fails (Redis down), the limiter fails open or closed as
configured, never by accident: failing open lets the request through, counts
it in ``failures`` and logs a warning; failing closed raises
``errors.RateLimiterUnavailable`` (503).  After a failure the storage is not
tried again for ``RETRY_INTERVAL_S``, so an outage does not add a connection
attempt to every request.

``RatePolicy`` chooses the rate for a class of request (read, write, report,
anonymous, login) and a set of roles.  Nothing here imports the web framework.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.strategies import (
    RateLimiter as LimitsStrategy,
)

from segmentd import errors

log = logging.getLogger("segmentd.ratelimit")

RETRY_INTERVAL_S = 1.0
# Redis must answer quickly or be treated as down: a limiter that waits on a
# dead server would turn its outage into ours.
REDIS_TIMEOUT_S = 0.5
STRATEGIES: Mapping[str, type[LimitsStrategy]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit: what the ``RateLimit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the bucket has room again
    window_s: int
    degraded: bool = False  # the storage failed and the limiter failed open

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_s)


class RateLimiter(Protocol):
    # True when a hit may wait on the network (Redis): callers keep such
    # hits off the event loop.
    blocking: bool

    def hit(self, key: str, rate: str) -> Decision:
        """Consume one unit of ``rate`` from bucket ``key``."""

    def peek(self, key: str, rate: str) -> Decision:
        """The bucket's state without consuming (``allowed``: one more would pass)."""


class NoLimits:
    """The limiter when rate limiting is disabled: every request passes."""

    failures = 0
    blocking = False

    def hit(self, key: str, rate: str) -> Decision:
        return Decision(True, 0, 0, 0, 0, degraded=True)

    def peek(self, key: str, rate: str) -> Decision:
        return self.hit(key, rate)


@dataclass
class LimitsRateLimiter:
    """``limits`` strategy over memory or Redis storage, failing open or closed."""

    storage_url: str = "memory://"
    strategy: str = "moving-window"
    key_prefix: str = "segmentd"
    fail_open: bool = True
    failures: int = 0
    _storage: Storage = field(init=False, repr=False)
    _limiter: LimitsStrategy = field(init=False, repr=False)
    _items: dict[str, RateLimitItem] = field(init=False, repr=False, default_factory=dict)
    _down_until: float = field(init=False, repr=False, default=0.0)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    blocking: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        options: dict[str, float | str | bool] = {"wrap_exceptions": True}
        if self.storage_url.startswith(("redis://", "rediss://")):
            options |= {
                "socket_timeout": REDIS_TIMEOUT_S,
                "socket_connect_timeout": REDIS_TIMEOUT_S,
            }
        storage = storage_from_string(self.storage_url, **options)
        if not isinstance(storage, Storage):
            raise ValueError("ratelimit_storage_url must name a synchronous storage")
        self._storage = storage
        self._limiter = STRATEGIES[self.strategy](self._storage)
        self.blocking = not self.storage_url.startswith("memory://")

    def _item(self, rate: str) -> RateLimitItem:
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = parse(rate)
        return item

    def hit(self, key: str, rate: str) -> Decision:
        return self._decide(key, rate, consume=True)

    def peek(self, key: str, rate: str) -> Decision:
        return self._decide(key, rate, consume=False)

    def _decide(self, key: str, rate: str, *, consume: bool) -> Decision:
        item = self._item(rate)
        window = item.get_expiry()
        if time.monotonic() < self._down_until:
            return self._unavailable(item, window)
        try:
            if consume:
                allowed = self._limiter.hit(item, self.key_prefix, key)
            else:
                allowed = self._limiter.test(item, self.key_prefix, key)
            stats = self._limiter.get_window_stats(item, self.key_prefix, key)
        except StorageError as exc:
            with self._lock:
                self._down_until = time.monotonic() + RETRY_INTERVAL_S
            log.warning("rate limit storage unavailable: %s", type(exc.storage_error).__name__)
            return self._unavailable(item, window)
        # ``limits`` stamps windows with its own clock reading: rounding can
        # put the reset a second past the window, which no bucket can be.
        reset = min(window, max(0, math.ceil(stats.reset_time - time.time())))
        return Decision(allowed, item.amount, max(0, stats.remaining), reset, window)

    def _unavailable(self, item: RateLimitItem, window: int) -> Decision:
        with self._lock:
            self.failures += 1
        if not self.fail_open:
            raise errors.RateLimiterUnavailable(retry_after=math.ceil(RETRY_INTERVAL_S))
        return Decision(True, item.amount, item.amount, window, window, degraded=True)


class InProcessMovingWindow:
    """``moving-window`` over this process's memory: a deque of hit times per key.

    The same decisions and headers as ``limits``' memory storage, without
    its costs on the request path: that storage inserts each hit at the
    front of a list (O(hits in the window) per hit) and starts a Timer
    thread to expire entries.  Here a hit is O(1) amortised, and keys whose
    window has passed are swept once the table has doubled since the last
    sweep, so memory stays bounded by the callers active within a window.
    """

    blocking = False
    failures = 0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[str, tuple[deque[float], int]] = {}  # key -> (hit times, window s)
        self._items: dict[str, RateLimitItem] = {}
        self._sweep_at = 1024
        self._lock = threading.Lock()

    def hit(self, key: str, rate: str) -> Decision:
        return self._decide(key, rate, consume=True)

    def peek(self, key: str, rate: str) -> Decision:
        return self._decide(key, rate, consume=False)

    def _decide(self, key: str, rate: str, *, consume: bool) -> Decision:
        item = self._items.get(rate) or self._items.setdefault(rate, parse(rate))
        limit, window = item.amount, item.get_expiry()
        now = self._clock()
        with self._lock:
            entry = self._hits.get(key)
            hits: deque[float] = deque() if entry is None else entry[0]
            while hits and hits[0] <= now - window:
                hits.popleft()
            allowed = len(hits) < limit
            if consume and allowed:
                hits.append(now)
                if entry is None:
                    self._hits[key] = (hits, window)
                    self._maybe_sweep(now)
            oldest = hits[0] if hits else now
        # ``window - age``, clamped: ``oldest + window - now`` rounds to
        # 60.000...01 for a hit made now, and ceil() would say 61.
        reset = min(window, max(0, math.ceil(window - (now - oldest))))
        return Decision(allowed, limit, max(0, limit - len(hits)), reset, window)

    def _maybe_sweep(self, now: float) -> None:
        if len(self._hits) < self._sweep_at:
            return
        stale = [
            k for k, (hits, window) in self._hits.items() if not hits or hits[-1] <= now - window
        ]
        for key in stale:
            del self._hits[key]
        self._sweep_at = max(1024, 2 * len(self._hits))


def build_limiter(storage_url: str, strategy: str, key_prefix: str, fail_open: bool) -> RateLimiter:
    """The limiter for the configured storage and strategy."""
    if storage_url == "memory://" and strategy == "moving-window":
        return InProcessMovingWindow()
    return LimitsRateLimiter(storage_url, strategy, key_prefix, fail_open)


@dataclass(frozen=True)
class RateLimits:
    """What the API needs: the limiter and the policy choosing rates."""

    limiter: RateLimiter = field(default_factory=NoLimits)
    policy: RatePolicy | None = None  # None: rate limiting disabled

    @property
    def blocking(self) -> bool:
        return self.policy is not None and self.limiter.blocking

    def hit(self, klass: str, key: str, roles: Iterable[str] = ()) -> Decision | None:
        if self.policy is None:
            return None
        return self.limiter.hit(f"{klass}:{key}", self.policy.rate(klass, roles))

    def peek(self, klass: str, key: str) -> Decision | None:
        if self.policy is None:
            return None
        return self.limiter.peek(f"{klass}:{key}", self.policy.rate(klass))


@dataclass(frozen=True)
class RatePolicy:
    """Rates per class of request, with per-role overrides (most generous wins)."""

    defaults: Mapping[str, str]
    roles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def rate(self, klass: str, roles: Iterable[str] = ()) -> str:
        candidates = [self.roles[r][klass] for r in roles if klass in self.roles.get(r, {})]
        if not candidates:
            return self.defaults[klass]
        return max(candidates, key=_per_second)


def _per_second(rate: str) -> float:
    item = parse(rate)
    return item.amount / item.get_expiry()


def login_key(domain: str, user: str, address: str) -> str:
    """The failed-login bucket of a user name tried from one client address:
    hashed, so any name is a safe key.  Per address, so that nobody can
    lock the real user out by failing on purpose from elsewhere."""
    key = f"{domain}\x00{user}\x00{address}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    return f"login:{digest[:32]}"
