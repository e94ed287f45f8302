"""A read for a one-row show, on a pooled DB-API connection: no Session, no Connection.

A show of one resource by id is a single indexed SELECT, yet through a
Session it paid for the session, its transaction, the ORM's statement
context and the result machinery: about 160 µs of the SELECT's 175 µs on
SQLite, a third of the whole request.  ``PreparedRead`` compiles a
statement once per dialect (SQL text, parameter order, result converters)
and ``Snapshot`` runs it on a connection taken from the same pool, in a
transaction of its own that is rolled back when it is returned.  Only
reads use it; every write goes through a Session.  ``session_rows`` runs
such a read inside a Session's transaction, on its connection (so it sees
the transaction's own writes), for a hot read of a write path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Converter = Callable[[Any], Any] | None
T = TypeVar("T")


def per_dialect(cache: dict[str, T], dialect: Dialect, build: Callable[[Dialect], T]) -> T:
    """``build(dialect)``, once per dialect (a statement's compiled form)."""
    found = cache.get(dialect.name)
    if found is None:
        found = cache[dialect.name] = build(dialect)
    return found


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # parameter names by position (qmark), or named
    converters: tuple[Converter, ...]
    literals: dict[str, Any]  # the statement's own values (``+ 1``, ``LIMIT 1``)


@dataclass(slots=True)
class PreparedRead:
    """A SELECT compiled once per dialect, with its columns' result converters.

    Its parameters must need no conversion on the way in (strings, ints):
    checked when it compiles, so a new statement cannot silently bind a
    value the database would read differently.  Values written into the
    statement (``+ 1``, ``LIMIT 1``) are bound as SQLAlchemy binds them."""

    statement: Select[*tuple[Any, ...]]
    _by_dialect: dict[str, _Compiled] = field(default_factory=dict)

    def compiled(self, dialect: Dialect) -> _Compiled:
        return per_dialect(self._by_dialect, dialect, self._compile)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        for name, bind in compiled.binds.items():
            if bind.type._cached_bind_processor(dialect) is not None:
                raise TypeError(f"{name}: a parameter that needs conversion")
        converters = tuple(
            column.type._cached_result_processor(dialect, None)
            for column in self.statement.selected_columns
        )
        order = (
            tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        )
        literals = {
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required
        }
        return _Compiled(compiled.string, order, converters, literals)


class Snapshot:
    """Reads in one transaction on one pooled DB-API connection."""

    __slots__ = ("_dialect", "_raw")

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self._raw = raw
        self._dialect = dialect

    def rows(self, query: PreparedRead, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        compiled = query.compiled(self._dialect)
        if compiled.literals:
            params = {**compiled.literals, **params}
        bound = [params[name] for name in compiled.order] if compiled.order else dict(params)
        with as_sqlalchemy_raises(self._dialect, compiled.sql, bound):
            cursor = self._raw.cursor()
            try:
                cursor.execute(compiled.sql, bound)
                fetched = cursor.fetchall()
            finally:
                cursor.close()
        converters = compiled.converters
        return [
            tuple(
                v if c is None or v is None else c(v) for c, v in zip(converters, row, strict=True)
            )
            for row in fetched
        ]


@contextmanager
def snapshot(engine: Engine) -> Iterator[Snapshot]:
    """A read-only transaction on a connection from ``engine``'s pool; the
    pool rolls it back when the connection is returned."""
    with as_sqlalchemy_raises(engine.dialect, None, None):
        raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            # pysqlite opens no transaction for a SELECT: begin one, so
            # several statements see one state of the database.
            raw.cursor().execute("BEGIN DEFERRED")
        yield Snapshot(raw, engine.dialect)
    finally:
        raw.close()


def session_rows(
    session: Session, query: PreparedRead, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """``query``'s rows in ``session``'s transaction, on its connection."""
    conn = session.connection()
    return Snapshot(conn.connection, conn.dialect).rows(query, params)


@contextmanager
def as_sqlalchemy_raises(dialect: Dialect, sql: str | None, params: Any) -> Iterator[None]:
    """Driver errors wrapped as SQLAlchemy wraps them, so the one error
    mapping (503 for an unreachable database) applies unchanged."""
    try:
        yield
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
