"""Neutron's standard attributes shared by every resource: revision and tags."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

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


def new_tags(model: Any, tags: list[str] | None) -> list[Any]:
    """Tag rows for a resource being created (its ``tags`` collection)."""
    return [model(tag=tag) for tag in sorted(set(tags or []))]


def set_tags(session: Session, model: Any, owner: str, owner_id: str, tags: list[str]) -> None:
    """Replace the tag set of one resource with two set-based statements."""
    session.execute(delete(model).where(getattr(model, owner) == owner_id))
    unique = sorted(set(tags))
    if unique:
        session.execute(insert(model), [{owner: owner_id, "tag": tag} for tag in unique])
