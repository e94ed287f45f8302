"""What differs between SQLite and PostgreSQL, in one place.

Services ask these questions instead of branching on dialect names
themselves: an ``INSERT`` with ``ON CONFLICT``, a transaction-scoped lock
named by a key, whether the database serialises writers on its own.
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert(session: Session, table: Any) -> Any:
    """``INSERT`` with ``on_conflict_do_nothing``/``do_update`` for the session's database."""
    return postgresql.insert(table) if is_postgres(session) else sqlite.insert(table)


def json_array_elements(session: Session, array: Any) -> Any:
    """A table of the elements of a JSON array parameter, column ``value``:
    PostgreSQL's ``jsonb_array_elements``, SQLite's ``json_each``."""
    if is_postgres(session):
        return func.jsonb_array_elements(cast(array, JSONB)).table_valued("value")
    return func.json_each(array).table_valued("value")


def lock(session: Session, *names: str, exclusive: bool = True) -> None:
    """Locks named ``names`` until the transaction ends (shared or exclusive),
    taken in one statement, in a fixed order (no deadlock between takers).

    PostgreSQL: advisory transaction locks.  SQLite needs none: its writers
    take the database lock at ``BEGIN IMMEDIATE`` and run one at a time.
    """
    if not is_postgres(session) or not names:
        return
    take = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    keys = sorted({zlib.crc32(name.encode()) for name in names})
    session.execute(select(*(take(key) for key in keys)))
