"""Query-string and header parameters: one parser for every list, ``fields``, ``If-Match``.

Names are checked against the resource's ``QuerySpec`` allow-list before
anything reaches a query; bounds (page size, filter values, sort keys,
fields) come from settings.  These run on the event loop: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Path, Query, Request

from segmentd import errors
from segmentd.api.auth import runtime_of
from segmentd.config import Settings
from segmentd.services.host_mapping import HOST_PATTERN
from segmentd.services.query import ListQuery, QuerySpec, parse_filters

T = TypeVar("T")
RESERVED_QUERY = frozenset({"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"})
_IF_MATCH = re.compile(r"^\s*revision_number=(\d{1,18})\s*$")

# A host name in a path: the one host-name rule (services.host_mapping).
HostName = Annotated[str, Path(max_length=255, pattern=HOST_PATTERN)]


@dataclass(frozen=True)
class ListParams:
    query: ListQuery
    fields: list[str]
    limit_given: bool


def list_params(
    spec: QuerySpec, field_names: frozenset[str]
) -> Callable[..., Awaitable[ListParams]]:
    """Dependency factory parsing Neutron list parameters against ``spec``.

    The declared parameters are for the OpenAPI document; values are read
    from the query string once, here.
    """

    async def dependency(
        request: Request,
        limit: Annotated[int | None, Query(ge=0)] = None,
        marker: Annotated[str | None, Query(max_length=255)] = None,
        page_reverse: Annotated[bool, Query()] = False,
        sort_key: Annotated[list[str] | None, Query()] = None,
        sort_dir: Annotated[list[str] | None, Query()] = None,
        fields: Annotated[list[str] | None, Query()] = None,
    ) -> ListParams:
        settings = runtime_of(request).settings
        raw: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            if name not in RESERVED_QUERY:
                raw.setdefault(name, []).append(value)
        filters, tag_filters = parse_filters(spec, raw, settings.max_filter_values)
        query = ListQuery(
            filters=filters,
            tag_filters=tag_filters,
            sorts=_sorts(spec, sort_key or [], sort_dir or [], settings.max_sort_keys),
            limit=page_limit(limit, settings),
            marker=_marker(spec, marker),
            reverse=page_reverse,
        )
        names = _fields(fields or [], field_names, settings.max_fields)
        return ListParams(query, names, limit is not None)

    return dependency


def page_limit(limit: int | None, settings: Settings) -> int:
    """The page size: absent -> the default, 0 ("no limit" in Neutron) -> the
    maximum, anything larger than the maximum -> the maximum (clamped, not
    refused, as Neutron does with ``pagination_max_limit``)."""
    if limit is None:
        return min(settings.pagination_default_limit, settings.pagination_max_limit)
    if limit == 0:
        return settings.pagination_max_limit
    return min(limit, settings.pagination_max_limit)


def _marker(spec: QuerySpec, marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        parsed: str = spec.marker(marker)
    except ValueError:
        raise errors.InvalidQuery(error_message=f"marker must be {spec.marker_kind}") from None
    return parsed


def _sorts(spec: QuerySpec, keys: list[str], dirs: list[str], cap: int) -> list[tuple[str, bool]]:
    if len(keys) > cap:
        raise errors.InvalidQuery(error_message=f"at most {cap} sort keys")
    if len(dirs) > len(keys):
        raise errors.InvalidQuery(error_message="more sort_dir than sort_key values")
    for key in keys:
        if key not in spec.sorts:
            raise errors.InvalidQuery(error_message=f"'{key}' is not a valid sort key")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise errors.InvalidQuery(error_message="sort_dir must be 'asc' or 'desc'")
    padded = dirs + ["asc"] * (len(keys) - len(dirs))
    return [(k, d == "asc") for k, d in zip(keys, padded, strict=True)]


def _fields(fields: list[str], allowed: frozenset[str], cap: int) -> list[str]:
    names = [n for f in fields for n in f.split(",") if n]
    if len(names) > cap:
        raise errors.InvalidQuery(error_message=f"at most {cap} fields")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise errors.InvalidQuery(error_message=f"'{unknown[0]}' is not a valid field")
    return names


def fields_param(allowed: frozenset[str]) -> Callable[..., Awaitable[list[str]]]:
    async def dependency(
        request: Request, fields: Annotated[list[str] | None, Query()] = None
    ) -> list[str]:
        return _fields(fields or [], allowed, runtime_of(request).settings.max_fields)

    def fast(request: Request) -> list[str]:  # the same, for ``binder``
        fields = request.query_params.getlist("fields")
        return _fields(fields, allowed, runtime_of(request).settings.max_fields)

    dependency.fast = fast  # type: ignore[attr-defined]
    return dependency


def _revision(value: str | None) -> int | None:
    if value is None:
        return None
    found = _IF_MATCH.match(value)
    if found is None:
        raise errors.InvalidInput(error_message="If-Match must be 'revision_number=<integer>'")
    return int(found.group(1))


async def if_match(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """``If-Match: revision_number=N`` -> N (compare-and-swap updates)."""
    return _revision(if_match)


if_match.fast = lambda request: _revision(request.headers.get("if-match"))  # type: ignore[attr-defined]


IfMatch = Annotated[int | None, Depends(if_match)]


def bulk_items(items: list[T], settings: Settings, collection: str) -> list[T]:
    """The items of a create body, within ``max_bulk_create`` (else 413)."""
    if len(items) > settings.max_bulk_create:
        raise errors.TooManyBulkItems(maximum=settings.max_bulk_create, collection=collection)
    return items
