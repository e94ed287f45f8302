"""List queries: allow-listed filters and sort keys, turned into SQL expressions.

Each resource declares a ``QuerySpec``: the only names a client may filter or
sort on, each bound to a column expression and a value parser.  Values only
ever reach SQL as bound parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select

from segmentd import errors
from segmentd.authz import Permission, Principal, can
from segmentd.db.base import Page, SortKey, paginate

Parser = Callable[[str], Any]
ConditionBuilder = Callable[[list[Any]], ColumnElement[bool]]

TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def parse_str(value: str) -> str:
    if len(value) > 255:
        raise ValueError("value too long")
    if "\x00" in value:
        # No stored value holds NUL (PostgreSQL text cannot): refuse, don't query.
        raise ValueError("NUL character")
    return value


def parse_int(value: str) -> int:
    number = int(value)
    if not -(2**63) < number < 2**63:
        raise ValueError("integer out of range")
    return number


def parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError("not a boolean")


def parse_uuid(value: str) -> str:
    return str(uuid.UUID(value))


@dataclass(frozen=True)
class Filter:
    """A filterable attribute: values are OR-ed (``?a=1&a=2`` means a IN (1, 2))."""

    column: Any
    parse: Parser = parse_str
    # The rule that shows the attribute; callers without it may not filter on it.
    permission: Permission | None = None

    def condition(self, values: list[Any]) -> ColumnElement[bool]:
        condition: ColumnElement[bool] = self.column.in_(values)
        return condition


@dataclass(frozen=True)
class CustomFilter:
    build: ConditionBuilder
    parse: Parser = parse_str
    permission: Permission | None = None

    def condition(self, values: list[Any]) -> ColumnElement[bool]:
        return self.build(values)


@dataclass(frozen=True)
class Param:
    """An allow-listed parameter the service reads itself (not a column filter)."""

    parse: Parser = parse_str
    permission: Permission | None = None


@dataclass(frozen=True)
class TagTable:
    """How a resource's tags are stored: the table and its owner column."""

    model: Any
    owner_column: Any
    resource_id: Any


@dataclass(frozen=True)
class QuerySpec:
    filters: Mapping[str, Filter | CustomFilter | Param]
    sorts: Mapping[str, Any]
    tags: TagTable | None = None
    # Pages are keyed by ``id`` (a UUID) unless the resource says otherwise.
    marker: Parser = parse_uuid
    marker_kind: str = "a UUID"
    # A marker naming no row the caller sees: the resource's own 404, as
    # Neutron answers (``NetworkNotFound`` for a network marker).
    missing: Callable[[str], errors.NotFound] | None = None


@dataclass(slots=True)
class ListQuery:
    filters: dict[str, list[Any]] = field(default_factory=dict)
    tag_filters: dict[str, list[str]] = field(default_factory=dict)
    sorts: list[tuple[str, bool]] = field(default_factory=list)
    limit: int = 100
    marker: str | None = None
    reverse: bool = False


def parse_filters(
    spec: QuerySpec, raw: Mapping[str, Sequence[str]], max_values: int
) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    """Allow-listed, parsed filters; at most ``max_values`` values in all.

    Tag filters take comma-separated lists and each tag counts as a value,
    so ``?tags-any=t0,...,t899`` is as bounded as 900 parameters would be.
    """
    filters: dict[str, list[Any]] = {}
    tag_filters: dict[str, list[str]] = {}
    count = 0
    for name, values in raw.items():
        is_tags = name in TAG_FILTERS and spec.tags is not None
        parts = [t for v in values for t in v.split(",") if t] if is_tags else list(values)
        count += len(parts)
        if count > max_values:
            raise errors.InvalidQuery(error_message=f"at most {max_values} filter values")
        flt = spec.filters.get(name)
        if not is_tags and flt is None:
            raise errors.InvalidQuery(error_message=f"'{name}' is not a valid filter")
        try:
            if is_tags:
                tag_filters[name] = sorted({parse_str(t) for t in parts})
            elif flt is not None:
                filters[name] = [flt.parse(v) for v in parts]
        except ValueError:
            raise errors.InvalidQuery(error_message=f"invalid value for filter '{name}'") from None
    return filters, tag_filters


def _tag_condition(tags: TagTable, kind: str, values: list[str]) -> ColumnElement[bool]:
    """One condition of constant size, whatever the number of tags.

    Each is a correlated lookup on the tag table's primary key (owner, tag),
    so its cost per candidate row is that row's tag count, and the values
    travel as one expanding IN parameter.  (One EXISTS per value built an
    expression tree as large as the list: PostgreSQL's planner then ran for
    minutes, out of reach of statement_timeout and pg_cancel_backend.)
    """
    mine = (tags.owner_column == tags.resource_id, tags.model.tag.in_(values))
    if kind in ("tags-any", "not-tags-any"):
        has_any = exists(select(1).where(*mine))
        return has_any if kind == "tags-any" else ~has_any
    held = select(func.count()).where(*mine).scalar_subquery()
    # The values are distinct and (owner, tag) is unique: all held <=> count == n.
    return held == len(values) if kind == "tags" else held < len(values)


def list_page(
    session: Any,
    principal: Principal,
    scoped: Select[Any],
    spec: QuerySpec,
    query: ListQuery,
    id_column: Any,
    options: Sequence[Any] = (),
) -> Page:
    """Filter, order and page a scoped statement; ``options`` are loader options."""
    refuse_hidden_filters(principal, spec, query)
    keys = sort_keys(spec, query, id_column)
    marker = (
        marker_values(session, scoped, keys, id_column, query.marker, spec.missing)
        if query.marker
        else None
    )
    stmt = apply_filters(scoped, spec, query).options(*options)
    return paginate(session, stmt, keys, query.limit, marker, query.reverse)


def refuse_hidden_filters(principal: Principal, spec: QuerySpec, query: ListQuery) -> None:
    """Filtering on an attribute the caller may not see would reveal it: refuse,
    with the answer an unknown filter gets."""
    for name in sorted(query.filters):
        permission = spec.filters[name].permission
        if permission is not None and not can(principal, permission):
            raise errors.InvalidQuery(error_message=f"'{name}' is not a valid filter")


def apply_filters(stmt: Select[Any], spec: QuerySpec, query: ListQuery) -> Select[Any]:
    for name, values in query.filters.items():
        flt = spec.filters[name]
        if not isinstance(flt, Param):
            stmt = stmt.where(flt.condition(values))
    if spec.tags is not None:
        for kind, values in query.tag_filters.items():
            if values:
                stmt = stmt.where(_tag_condition(spec.tags, kind, values))
    return stmt


def sort_keys(spec: QuerySpec, query: ListQuery, id_column: Any) -> list[SortKey]:
    """The requested order plus the ``id`` tie-breaker that makes keyset paging exact."""
    keys = [SortKey(spec.sorts[name], asc) for name, asc in query.sorts]
    if not any(name == "id" for name, _ in query.sorts):
        last_asc = query.sorts[-1][1] if query.sorts else True
        keys.append(SortKey(id_column, last_asc))
    return keys


def marker_values(
    session: Any,
    scoped: Select[Any],
    keys: list[SortKey],
    id_column: Any,
    marker: str,
    missing: Callable[[str], errors.NotFound] | None = None,
) -> list[Any]:
    """Sort values of the marker row, looked up within the caller's scope
    (a hidden row is missing: the same 404)."""
    stmt = scoped.with_only_columns(*(k.expression for k in keys)).where(id_column == marker)
    row = session.execute(stmt).first()
    if row is None:
        raise missing(marker) if missing is not None else errors.MarkerNotFound(marker=marker)
    return list(row)
