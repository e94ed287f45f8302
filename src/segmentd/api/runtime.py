"""What requests share: built once at start-up by ``main``, read-only afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyio import CapacityLimiter

from segmentd.authz import Policy
from segmentd.config import Settings
from segmentd.db.base import Database, utcnow
from segmentd.identity import keystone as keystone_auth
from segmentd.identity import tokens
from segmentd.identity.passwords import Passwords
from segmentd.ratelimit import RateLimits
from segmentd.services import audit
from segmentd.services.allocation import TypeDriver
from segmentd.services.segments import MtuPolicy


class HandlerSlots:
    """Thread-pool slots for handlers, reads and writes.

    Handlers mostly hold the GIL, so past a few threads they only fight
    over it.  On SQLite writes have one slot of their own: its one write
    connection serialises them anyway, and a write waiting for it should
    wait in the event loop, not park a thread that reads could use.  A
    limiter belongs to one event loop, so each loop gets its own pair (a
    server has one loop per worker; in-process test clients run one per
    thread).
    """

    def __init__(self, threads: int = 8, own_write_slot: bool = False, hashing: int = 1) -> None:
        self.threads = threads
        self.own_write_slot = own_write_slot
        self.hashing_threads = hashing
        self._by_loop: weakref.WeakKeyDictionary[Any, tuple[CapacityLimiter, ...]]
        self._by_loop = weakref.WeakKeyDictionary()

    @classmethod
    def for_settings(cls, settings: Settings) -> HandlerSlots:
        embedded = settings.is_sqlite()
        threads = settings.handler_threads or (2 if embedded else 3)
        return cls(threads, own_write_slot=embedded, hashing=settings.password_hash_concurrency)

    def _limiters(self) -> tuple[CapacityLimiter, ...]:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            reads = CapacityLimiter(self.threads)
            writes = CapacityLimiter(1) if self.own_write_slot else reads
            found = self._by_loop[loop] = (reads, writes, CapacityLimiter(self.hashing_threads))
        return found

    def limiter(self, write: bool) -> CapacityLimiter:
        return self._limiters()[1 if write else 0]

    def write_slot_idle(self) -> bool:
        """No write of this loop runs in a thread or waits for one (so a
        write run on the loop now overtakes nobody)."""
        writes = self.limiter(True)
        return writes.borrowed_tokens == 0 and writes.statistics().tasks_waiting == 0

    def hashing(self) -> CapacityLimiter:
        """Password hashes: memory-hard and slow, a few at a time (outside any transaction)."""
        return self._limiters()[2]


@dataclass(frozen=True)
class Runtime:
    """Everything built once at start-up and shared by requests."""

    settings: Settings
    db: Database
    drivers: dict[str, TypeDriver]
    tenant_types: list[str]
    policy: Policy = field(default_factory=Policy)
    passwords: Passwords = field(default_factory=Passwords)
    clock: Callable[[], dt.datetime] = utcnow
    limits: RateLimits = field(default_factory=RateLimits)
    token_cache: tokens.TokenCache = field(default_factory=lambda: tokens.TokenCache(0))
    slots: HandlerSlots = field(default_factory=HandlerSlots)
    denials: audit.DenialCounter = field(default_factory=audit.DenialCounter)
    mtus: MtuPolicy = field(default_factory=MtuPolicy)
    # Per-project quota defaults by resource (``settings.quota_defaults``).
    quotas: dict[str, int] = field(default_factory=dict)
    # auth_strategy "keystone": validates tokens at the external Keystone.
    keystone: keystone_auth.KeystoneValidator | None = None

    def reads_inline(self) -> bool:
        """May a bounded read run on the event loop?  Only on an embedded
        database (no network round trip to wait for) and while a read
        connection is free (no pool wait): the loop must never block."""
        return self.db.embedded and self.db.read_connection_free()

    def writes_inline(self) -> bool:
        """May a bounded write run on the event loop?  Only on an embedded
        database, and while no other write of this process holds or waits
        for the write connection; it then begins with ``nowait`` (another
        process holding SQLite's lock sends it to a thread after all)."""
        db = self.db
        return db.embedded and self.slots.write_slot_idle() and db.write_connection_free()

    def close(self) -> None:
        """Closes the connection pools (tests and tools that build runtimes)."""
        self.db.dispose()
