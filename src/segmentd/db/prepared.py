"""An INSERT compiled once, run on a Session's own DB-API connection.

Every write records an audit event: through the Session it cost a Core
statement's cache-key walk, parameter processing and result machinery, more
than SQLite spends on the row.  ``PreparedInsert`` compiles the statement
once per dialect and keeps each column's bind processor, so the values are
stored exactly as SQLAlchemy would store them (JSON text, timestamps);
``insert_rows`` runs it on the session's connection, in its transaction, so
the rows commit or roll back with the change they describe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from segmentd.db.snapshot import as_sqlalchemy_raises, per_dialect

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter order (positional) or the names (named)
    positional: bool
    processors: tuple[Processor, ...]


@dataclass(slots=True)
class PreparedInsert:
    """``INSERT INTO table (columns) VALUES (...)``, compiled once per dialect.

    Every row gives every column (no defaults are filled in here)."""

    table: Table
    columns: tuple[str, ...]
    _by_dialect: dict[str, _Compiled] = field(default_factory=dict)

    def compiled(self, dialect: Dialect) -> _Compiled:
        return per_dialect(self._by_dialect, dialect, self._compile)

    def _compile(self, dialect: Dialect) -> _Compiled:
        stmt = insert(self.table).values({name: bindparam(name) for name in self.columns})
        compiled = stmt.compile(dialect=dialect)
        positional = bool(compiled.positional and compiled.positiontup)
        names = tuple(compiled.positiontup) if positional and compiled.positiontup else self.columns
        processors = tuple(
            compiled.binds[name].type._cached_bind_processor(dialect) for name in names
        )
        return _Compiled(compiled.string, names, positional, processors)


def insert_rows(
    session: Session, prepared: PreparedInsert, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``rows`` inserted in ``session``'s transaction (one statement)."""
    if not rows:
        return
    conn = session.connection()
    compiled = prepared.compiled(conn.dialect)
    pairs = tuple(zip(compiled.names, compiled.processors, strict=True))
    params: list[Any] = []
    for row in rows:
        values = [row[name] if proc is None else proc(row[name]) for name, proc in pairs]
        params.append(
            values if compiled.positional else dict(zip(compiled.names, values, strict=True))
        )
    execute_rows(session, compiled.sql, params)


def execute_rows(session: Session, sql: str, params: Sequence[Any]) -> None:
    """``sql`` once per parameter set, on ``session``'s DB-API connection (in
    its transaction), driver errors wrapped as SQLAlchemy wraps them (a lost
    database is still a 503)."""
    conn = session.connection()
    with as_sqlalchemy_raises(conn.dialect, sql, params):
        cursor = conn.connection.cursor()
        try:
            if len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
        finally:
            cursor.close()
