"""Readiness: is the database reachable and migrated to the code's head?

A probe opens its own short-lived connection (no pool: a probe never waits
behind busy requests for a pooled connection, and never hands a request a
connection it broke) with short connect and statement timeouts.  The answer
is cached for ``ttl`` seconds per process, and one probe runs at a time, so
an unauthenticated flood of ``/readyz`` costs at most one connection a second.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from sqlalchemy import Column, Engine, MetaData, String, Table, create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from segmentd.db.base import make_engine

_VERSION_TABLE = Table("alembic_version", MetaData(), Column("version_num", String(32)))

UNREACHABLE = "database unreachable"
NOT_MIGRATED = "database not migrated"


def probe_engine(database_url: str, timeout_s: int = 2) -> Engine:
    if database_url.startswith("sqlite"):
        return make_engine(database_url, poolclass=NullPool)
    return create_engine(
        database_url,
        poolclass=NullPool,
        connect_args={
            "connect_timeout": timeout_s,
            "options": f"-c statement_timeout={timeout_s * 1000}",
        },
    )


class Readiness:
    def __init__(
        self,
        engine: Engine,
        head: str,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.head = head
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._reason: str | None = UNREACHABLE

    def reason(self) -> str | None:
        """``None`` when ready, else a short reason fit for an unauthenticated caller."""
        with self._lock:
            if self._clock() - self._checked_at >= self.ttl:
                self._reason = self._probe()
                self._checked_at = self._clock()
            return self._reason

    def _probe(self) -> str | None:
        try:
            conn = self.engine.connect()
        except SQLAlchemyError:
            return UNREACHABLE
        try:
            versions = list(conn.scalars(select(_VERSION_TABLE.c.version_num)))
        except SQLAlchemyError:
            return NOT_MIGRATED
        finally:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
        return None if versions == [self.head] else NOT_MIGRATED
