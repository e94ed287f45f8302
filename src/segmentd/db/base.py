"""Metadata, engine and session construction, and keyset pagination."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Select,
    and_,
    create_engine,
    event,
    or_,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from segmentd.db.snapshot import Snapshot, snapshot

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, busy_timeout_ms: int = 10_000) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers proceed during a write; busy_timeout queues writers
    # instead of failing them; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


class WriteLockBusy(Exception):
    """SQLite's write lock is held (by another process): a ``NOWAIT``
    transaction did not begin, and nothing was done."""


def _sqlite_begin(conn: Any, busy_timeout_ms: int) -> None:
    # Writers take the write lock up front: a deferred transaction that reads
    # and then writes can fail outright against another writer.  Readers use
    # an engine copy with ``sqlite_begin="DEFERRED"`` so they never queue.
    # ``NOWAIT`` (a write run on the event loop) must not wait for the lock
    # at all: it fails at once, and the request waits in a thread instead.
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    raw = conn.connection.dbapi_connection
    if mode != "NOWAIT":
        raw.execute("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")
        return
    raw.execute("PRAGMA busy_timeout=0")
    try:
        raw.execute("BEGIN IMMEDIATE")
    except conn.dialect.loaded_dbapi.OperationalError as exc:
        raise WriteLockBusy(str(exc)) from exc
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")


def read_only(engine: Engine) -> Engine:
    """The engine to use for requests that only read (shares the pool)."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def make_engine(
    url: str, statement_timeout_ms: int = 10_000, busy_timeout_ms: int = 10_000, **kwargs: Any
) -> Engine:
    """An engine whose connections bound how long one statement may wait or run.

    PostgreSQL: ``statement_timeout`` on every connection (cancelled
    statements surface as ``OperationalError``, answered 503).  SQLite:
    ``busy_timeout``, how long a writer queues for the lock.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "isolation_level": None}, **kwargs
        )

        def on_connect(dbapi_conn: Any, record: Any) -> None:
            _sqlite_pragmas(dbapi_conn, record, busy_timeout_ms)

        def on_begin(conn: Connection) -> None:
            _sqlite_begin(conn, busy_timeout_ms)

        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", on_begin)
        return engine
    connect_args = {"options": f"-c statement_timeout={int(statement_timeout_ms)}"}
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True, pool_size=10, **kwargs)


def statement_canceller(connection: Connection) -> Callable[[], None]:
    """A function that stops the statement running on ``connection``, from
    another thread: PostgreSQL's cancel request, SQLite's interrupt."""
    raw: Any = connection.connection.dbapi_connection
    cancel: Callable[[], None] = (
        raw.interrupt if connection.dialect.name == "sqlite" else raw.cancel
    )
    return cancel


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


class Database:
    """The service's engines, and the one way to open a transaction on them.

    ``writer`` serves transactions that may write, ``reader`` those that only
    read.  On PostgreSQL they share one pool.  SQLite admits one writer at a
    time, and a writer finding the lock taken sleeps in SQLite's busy
    handler with growing back-off (up to 100 ms a nap), which gave
    concurrent writes second-long tails; so each process has one write
    connection, and its writers queue for it in arrival order while readers
    keep a pool of their own (``BEGIN DEFERRED``: they never queue).
    """

    def __init__(self, writer: Engine, reader: Engine) -> None:
        self.writer = writer
        self.reader = reader
        self._sessions = {True: make_sessionmaker(writer), False: make_sessionmaker(reader)}
        # SQLite: a write that takes the lock at once or not at all.
        self._nowait = make_sessionmaker(writer.execution_options(sqlite_begin="NOWAIT"))

    @classmethod
    def open(
        cls, url: str, statement_timeout_ms: int, busy_timeout_ms: int, **engine_kwargs: Any
    ) -> Database:
        timeouts = (statement_timeout_ms, busy_timeout_ms)
        if not url.startswith("sqlite"):
            engine = make_engine(url, *timeouts, **engine_kwargs)
            return cls(engine, read_only(engine))
        writer = make_engine(
            url, *timeouts, pool_size=1, max_overflow=0, pool_timeout=60, **engine_kwargs
        )
        return cls(writer, read_only(make_engine(url, *timeouts, **engine_kwargs)))

    @property
    def embedded(self) -> bool:
        """SQLite: in this process, no network round trips."""
        return self.writer.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, write: bool, nowait: bool = False) -> Iterator[Session]:
        """A session in a transaction, committed when the block ends normally.

        ``nowait`` (SQLite, a write): the write lock is taken now, or
        ``WriteLockBusy`` is raised before anything is done."""
        maker = self._nowait if nowait and write and self.embedded else self._sessions[write]
        with maker() as session, session.begin():
            if nowait:
                session.connection()  # BEGIN IMMEDIATE now, not at the first statement
            yield session

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """A read without a Session, for one-row shows (``db.snapshot``)."""
        return snapshot(self.reader)

    def read_connection_free(self) -> bool:
        pool: Any = self.reader.pool
        return bool(pool.checkedout() < pool.size())

    def write_connection_free(self) -> bool:
        """SQLite: is this process's one write connection in its pool?"""
        pool: Any = self.writer.pool
        return bool(pool.checkedout() < pool.size())

    def dispose(self) -> None:
        for engine in (self.writer, self.reader):
            engine.dispose()


# Keyset pagination ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SortKey:
    expression: ColumnElement[Any]
    ascending: bool = True


@dataclass(slots=True)
class Page:
    items: Sequence[Any]
    has_more: bool
    extra: dict[str, Any] = field(default_factory=dict)


def _after(keys: Sequence[SortKey], marker: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``marker`` in the order given by ``keys``."""
    clauses = []
    for i, key in enumerate(keys):
        equal_prefix = [keys[j].expression == marker[j] for j in range(i)]
        step = key.expression > marker[i] if key.ascending else key.expression < marker[i]
        clauses.append(and_(*equal_prefix, step))
    return or_(*clauses)


def paginate(
    session: Any,
    stmt: Select[Any],
    keys: Sequence[SortKey],
    limit: int,
    marker_values: Sequence[Any] | None,
    reverse: bool,
) -> Page:
    """One page of ``stmt`` ordered by ``keys`` (last key must be unique, e.g. id).

    Fetches ``limit + 1`` rows to know whether another page exists, so a
    client never follows a link to an empty page.
    """
    effective = [SortKey(k.expression, k.ascending != reverse) for k in keys]
    if marker_values is not None:
        stmt = stmt.where(_after(effective, marker_values))
    order = [k.expression.asc() if k.ascending else k.expression.desc() for k in effective]
    result = session.execute(stmt.order_by(*order).limit(limit + 1))
    # One entity (an ORM class): its objects; several columns: the rows.
    rows = list(result.scalars() if len(stmt.column_descriptions) == 1 else result)
    has_more = len(rows) > limit
    rows = rows[:limit]
    if reverse:
        rows.reverse()
    return Page(rows, has_more)
