"""Tags as a sub-resource (Neutron's ``standard-attr-tag``): list, check,
replace, add, remove, clear.

Neutron's ``TaggingController`` (neutron/extensions/tagging.py) and tag
plugin (neutron/services/tag/tag_plugin.py) are the reference: adding a tag
already there and replacing with the same set change nothing, removing a
missing tag is 404 ``TagNotFound``, and more than ``MAX_TAGS`` distinct tags
is 400.  A change bumps the parent's revision.  The parent is loaded
row-locked by the pipeline, so the count check and the change see the same
tags under concurrent writers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.db.models import NetworkSegmentRangeTag, NetworkTag, SegmentTag, SubnetTag
from segmentd.services import networks, segment_ranges, segments, standard, subnets


@dataclass(frozen=True)
class Tagged:
    """Where one kind of resource keeps its tags, and how it is read back."""

    collection: str
    model: Any
    owner: str
    reload: Callable[[Session, str], Any]


NETWORKS = Tagged("networks", NetworkTag, "network_id", networks.reload)
SUBNETS = Tagged("subnets", SubnetTag, "subnet_id", subnets.reload)
SEGMENTS = Tagged("segments", SegmentTag, "segment_id", segments.reload)
SEGMENT_RANGES = Tagged(
    "network_segment_ranges", NetworkSegmentRangeTag, "range_id", segment_ranges.reload
)


def names(resource: Any) -> list[str]:
    return sorted(t.tag for t in resource.tags)


def check_unique(tags: list[str]) -> None:
    """neutron_lib's ``validate_list_of_unique_strings`` on a tags body."""
    seen: set[str] = set()
    for tag in tags:
        if tag in seen:
            raise errors.InvalidInput(error_message=f"Duplicate items in the list: '{tag}'")
        seen.add(tag)


def check_count(collection: str, tags: Iterable[str]) -> None:
    """Neutron's ``validate_tags_limit``: 400 ``BadRequest`` past the per-resource limit."""
    if len(set(tags)) > standard.MAX_TAGS:
        raise errors.BadRequest(
            resource=collection,
            msg=f"The number of tags exceed the per-resource limit of {standard.MAX_TAGS}",
        )


def require(resource: Any, tag: str) -> Any:
    """``GET .../tags/{tag}``: the resource if it carries ``tag``, else 404."""
    if tag not in names(resource):
        raise errors.TagNotFound(tag=tag)
    return resource


def _changed(session: Session, kind: Tagged, resource: Any) -> Any:
    standard.bump(resource)
    session.flush()
    return kind.reload(session, resource.id)


def replace(session: Session, kind: Tagged, resource: Any, tags: list[str]) -> Any:
    check_unique(tags)
    check_count(kind.collection, tags)
    if set(tags) == set(names(resource)):
        return resource
    standard.set_tags(session, kind.model, kind.owner, resource.id, tags)
    return _changed(session, kind, resource)


def add(session: Session, kind: Tagged, resource: Any, tags: list[str]) -> Any:
    """Add ``tags`` (Neutron's ``update_tag`` and ``create_tags``): idempotent."""
    check_unique(tags)
    current = set(names(resource))
    new = sorted(set(tags) - current)
    if not new:
        return resource
    check_count(kind.collection, current | set(new))
    session.execute(insert(kind.model), [{kind.owner: resource.id, "tag": t} for t in new])
    return _changed(session, kind, resource)


def remove(session: Session, kind: Tagged, resource: Any, tag: str) -> Any:
    require(resource, tag)
    owner = getattr(kind.model, kind.owner)
    session.execute(delete(kind.model).where(owner == resource.id, kind.model.tag == tag))
    return _changed(session, kind, resource)


def clear(session: Session, kind: Tagged, resource: Any) -> Any:
    if not resource.tags:
        return resource
    standard.set_tags(session, kind.model, kind.owner, resource.id, [])
    return _changed(session, kind, resource)
