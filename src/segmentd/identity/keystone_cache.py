"""Where validated Keystone tokens wait to be reused: this process, and Redis.

keystonemiddleware keeps validations in memcached for ``token_cache_time``;
here every process keeps its own bounded table, and with a ``redis://`` URL
the workers also share one, so a token is validated once per deployment,
not once per worker.  An entry carries the wall-clock instant it must be
dropped (``until``), set once when Keystone answered, and a process that
copies a shared entry keeps that instant: however many tiers it passes
through, a validation is never reused longer than the TTL it got, so a
token revoked in Keystone stops working within ``token_cache_time``.

Keys are a MAC of the token (keyed BLAKE2b), never the token.  Shared entries are signed
with a key derived from the service user's password, which every worker
has and Redis does not: whoever can write to Redis still cannot forge an
identity (keystonemiddleware's ``memcache_security_strategy = MAC``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger("segmentd.identity")

Clock = Callable[[], float]
V = TypeVar("V")


class SharedStore(Protocol):
    """The slice of a Redis client the shared tier uses."""

    def get(self, name: str) -> Any: ...

    def set(self, name: str, value: bytes, *, px: int) -> Any: ...


class LocalTokens(Generic[V]):
    """A bounded table of (value, until) in this process, safe across threads.

    When full, expired entries go first, then the oldest: the table never
    grows past ``max_entries`` and a flood of distinct tokens only evicts.
    """

    def __init__(self, max_entries: int, clock: Clock = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)  # a dict read is atomic: no lock on the hit path
        if entry is None:
            return None
        if entry[1] <= self._clock():
            with self._lock:
                self._entries.pop(key, None)
            return None
        return entry[0]

    def put(self, key: str, value: V, until: float) -> None:
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self.max_entries:
                self._evict()
            self._entries[key] = (value, until)

    def until(self, key: str) -> float | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (_, until) in self._entries.items() if until <= now]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]

    def __len__(self) -> int:
        return len(self._entries)


class SignedStore:
    """The shared tier: signed JSON in Redis, which drops it itself at ``until``.

    A store that fails is a miss, logged: the cache only ever saves work,
    Keystone is still asked.
    """

    def __init__(self, client: SharedStore, secret: bytes, prefix: str, clock: Clock) -> None:
        self._client = client
        self._secret = secret
        self._prefix = prefix
        self._clock = clock

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest().encode()

    def put(self, key: str, value: dict[str, Any], until: float) -> None:
        payload = json.dumps({"until": until, "value": value}, separators=(",", ":")).encode()
        ttl_ms = max(1, int((until - self._clock()) * 1000))
        try:
            self._client.set(self._prefix + key, self._sign(payload) + b"." + payload, px=ttl_ms)
        except Exception as exc:  # a cache that cannot store costs a validation, nothing more
            log.warning("token cache: shared store unavailable (%s)", type(exc).__name__)

    def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        try:
            raw = self._client.get(self._prefix + key)
        except Exception as exc:
            log.warning("token cache: shared store unavailable (%s)", type(exc).__name__)
            return None
        if not raw:
            return None
        signature, _, payload = bytes(raw).partition(b".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            log.warning("token cache: dropped a shared entry with a bad signature")
            return None
        entry = json.loads(payload)
        until = float(entry["until"])
        return (entry["value"], until) if until > self._clock() else None


class TokenCache(Generic[V]):
    """Validations by token key: the local table, then (if configured) the shared one.

    ``local`` answers without I/O (callers on the event loop use it alone);
    ``get`` also asks the shared store.  Values stay objects in this process
    and travel as JSON (``codec``: to and from a dict) through the shared one.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        shared: SharedStore | None = None,
        secret: bytes | None = None,
        prefix: str = "segmentd:keystone:",
        clock: Clock = time.time,
        codec: tuple[Callable[[V], dict[str, Any]], Callable[[dict[str, Any]], V]] | None = None,
    ) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._local: LocalTokens[V] = LocalTokens(max_entries, clock)
        self._codec = codec
        # Without a shared store the key only has to be stable in this process.
        self._secret = secret or secrets.token_bytes(32)
        self._shared = None if shared is None else SignedStore(shared, self._secret, prefix, clock)

    def key(self, token: str) -> str:
        # Keyed BLAKE2b is a MAC in one C call (HMAC-SHA256 is two, and Python glue).
        raw = token.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(raw, key=self._secret, digest_size=32).hexdigest()

    def local(self, key: str) -> V | None:
        return self._local.get(key)

    def get(self, key: str) -> V | None:
        found = self._local.get(key)
        if found is not None or self._shared is None or self._codec is None:
            return found
        shared = self._shared.get(key)
        if shared is None:
            return None
        data, until = shared
        try:
            value = self._codec[1](data)
        except (KeyError, TypeError, ValueError):  # written by another version: a miss
            return None
        self._local.put(key, value, until)  # with the shared deadline, never a fresh one
        return value

    def put(self, key: str, value: V, expires: float) -> None:
        """Keep ``value`` for the TTL, never past ``expires`` (the token's own end)."""
        now = self._clock()
        until = min(now + self.ttl, expires)
        if until <= now:
            return
        self._local.put(key, value, until)
        if self._shared is not None and self._codec is not None:
            self._shared.put(key, self._codec[0](value), until)

    def until(self, key: str) -> float | None:
        """When this process drops ``key`` (tests and diagnostics)."""
        return self._local.until(key)


def shared_secret(service_password: str) -> bytes:
    """The key every worker derives alike from its configuration, and Redis never sees."""
    return hashlib.sha256(b"segmentd keystone token cache\x00" + service_password.encode()).digest()


def build_cache(
    url: str,
    ttl_seconds: float,
    max_entries: int,
    service_password: str,
    prefix: str,
    codec: tuple[Callable[[V], dict[str, Any]], Callable[[dict[str, Any]], V]],
) -> TokenCache[V]:
    """``memory://`` or ``redis://host:port/db`` (as ``ratelimit_storage_url``)."""
    if url.startswith("memory://"):
        return TokenCache(ttl_seconds, max_entries)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"token_cache_url: use memory:// or redis://..., not {url.split(':')[0]}")
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return TokenCache(
        ttl_seconds,
        max_entries,
        shared=client,
        secret=shared_secret(service_password),
        prefix=f"{prefix}:keystone:",
        codec=codec,
    )
