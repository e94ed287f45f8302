"""Neutron's standard attributes shared by every resource: revision and tags."""

from __future__ import annotations

import functools
from typing import Any, Protocol

from sqlalchemy import Update, bindparam, delete, insert, inspect, update
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from segmentd import errors
from segmentd.db.base import utcnow

# Neutron's per-resource tag limit (neutron/extensions/tagging.py MAX_TAGS_COUNT).
MAX_TAGS = 50


class Revisioned(Protocol):
    revision_number: Any
    updated_at: Any


def check_revision(resource: Revisioned, expected: int | None) -> None:
    """Compare-and-swap guard for ``If-Match: revision_number=N``."""
    if expected is not None and resource.revision_number != expected:
        raise errors.RevisionNumberConstraintFailed(
            expected=expected, current=resource.revision_number
        )


def bump(resource: Revisioned) -> None:
    resource.revision_number = resource.revision_number + 1
    resource.updated_at = utcnow()


def save(session: Session, resource: Any, values: dict[str, Any]) -> None:
    """Write ``values`` to a loaded resource, its revision bumped, with one
    UPDATE by primary key; the object takes them as its committed state.

    The unit of work's flush of the same change cost about eight times the
    CPU of this prepared statement (350 against 40-140 us on SQLite): the
    object is never marked modified, so nothing is left for it to do."""
    values = {**values, "revision_number": resource.revision_number + 1, "updated_at": utcnow()}
    mapper = inspect(resource).mapper
    stmt, key_names = _update_by_key(mapper, tuple(sorted(values)))
    params = {f"key_{name}": getattr(resource, name) for name in key_names}
    session.execute(stmt, {**params, **values})
    for name, value in values.items():
        set_committed_value(resource, name, value)


@functools.cache
def _update_by_key(mapper: Mapper[Any], names: tuple[str, ...]) -> tuple[Update, list[str]]:
    """``UPDATE <table> SET <names> WHERE <primary key>``, built once per shape
    (a statement built per call costs its cache-key walk every time)."""
    key_names = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    where = [c == bindparam(f"key_{n}") for c, n in zip(mapper.primary_key, key_names, strict=True)]
    columns: dict[Any, Any] = {mapper.column_attrs[n].columns[0]: bindparam(n) for n in names}
    table: Any = mapper.local_table
    return update(table).where(*where).values(columns), key_names


def new_tags(model: Any, tags: list[str] | None) -> list[Any]:
    """Tag rows for a resource being created (its ``tags`` collection)."""
    return [model(tag=tag) for tag in sorted(set(tags or []))]


def set_tags(session: Session, model: Any, owner: str, owner_id: str, tags: list[str]) -> None:
    """Replace the tag set of one resource with two set-based statements."""
    replace_rows(session, model, owner, owner_id, [{"tag": tag} for tag in sorted(set(tags))])


def replace_rows(
    session: Session, model: Any, owner: str, owner_id: str, rows: list[dict[str, Any]]
) -> None:
    """The rows of ``model`` owned by ``owner_id`` become ``rows``: one DELETE, one INSERT."""
    session.execute(delete(model).where(getattr(model, owner) == owner_id))
    if rows:
        session.execute(insert(model), [{owner: owner_id, **row} for row in rows])
