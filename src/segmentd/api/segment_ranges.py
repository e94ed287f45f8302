"""/v2.0/network_segment_ranges: thin handlers over ``services.segment_ranges``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from segmentd.api import schemas
from segmentd.api.deps import (
    Context,
    IfMatch,
    ListParams,
    TransactionalRoute,
    fields_param,
    list_params,
    reader,
    writer,
)
from segmentd.api.wire import json_response, no_content
from segmentd.authz import Permission
from segmentd.db.models import NetworkSegmentRange
from segmentd.services import segment_ranges
from segmentd.services.audit import snapshot

router = APIRouter(
    route_class=TransactionalRoute,
    prefix="/v2.0/network_segment_ranges",
    tags=["network_segment_ranges"],
)

Fields = Annotated[list[str], Depends(fields_param(schemas.RANGE_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(segment_ranges.LIST_SPEC, schemas.RANGE_FIELDS))]


def _view(
    session: Session, row: NetworkSegmentRange, cap: int, fields: list[str]
) -> dict[str, Any]:
    # The computed attributes cost queries; skip them when the caller did not ask.
    if fields and not set(schemas.RANGE_COMPUTED) & set(fields):
        return schemas.project(schemas.range_view(row, None), fields)
    usage = segment_ranges.usage(session, row, cap)
    return schemas.project(schemas.range_view(row, usage), fields)


def _one(ctx: Context, row: NetworkSegmentRange, fields: list[str], status: int = 200) -> Response:
    view = _view(ctx.session, row, ctx.runtime.settings.segment_range_detail_max, fields)
    return json_response({"network_segment_range": view}, status)


@router.post("", status_code=201)
def create_range(
    body: schemas.RangeCreateBody, ctx: Context = writer(Permission.CREATE_NETWORK_SEGMENT_RANGE)
) -> Response:
    req = body.network_segment_range
    spec = segment_ranges.RangeSpec(
        req.network_type,
        req.minimum,
        req.maximum,
        req.physical_network,
        req.shared,
        req.owner,
        req.name,
        req.description,
        tuple(req.tags or ()),
    )
    physnets = ctx.runtime.settings.vlan_physnets()
    row = segment_ranges.create(ctx.session, ctx.principal, spec, physnets)
    ctx.audit("create", "network_segment_range", row.id, after=snapshot(row))
    return _one(ctx, row, [], 201)


@router.get("")
def list_ranges(
    request: Request, params: Params, ctx: Context = reader(Permission.GET_NETWORK_SEGMENT_RANGE)
) -> Response:
    page = segment_ranges.list_(ctx.session, ctx.principal, params.query)
    cap = ctx.runtime.settings.segment_range_detail_max
    views = [_view(ctx.session, r, cap, params.fields) for r in page.items]
    return json_response(
        schemas.collection(
            request.url, "network_segment_ranges", views, page, params.query, params.limit_given
        )
    )


@router.get("/{range_id}")
def show_range(
    range_id: str, fields: Fields, ctx: Context = reader(Permission.GET_NETWORK_SEGMENT_RANGE)
) -> Response:
    return _one(ctx, segment_ranges.get(ctx.session, ctx.principal, range_id), fields)


@router.put("/{range_id}")
def update_range(
    range_id: str,
    body: schemas.RangeUpdateBody,
    revision: IfMatch,
    ctx: Context = writer(Permission.UPDATE_NETWORK_SEGMENT_RANGE),
) -> Response:
    req = body.network_segment_range
    changes = segment_ranges.RangeUpdate(
        req.name, req.description, req.minimum, req.maximum, req.tags
    )
    physnets = ctx.runtime.settings.vlan_physnets()
    # Loaded once: for the audit's before-view and for the service.
    row = segment_ranges.get(ctx.session, ctx.principal, range_id, lock=True)
    before = snapshot(row)
    row = segment_ranges.update(ctx.session, ctx.principal, row, changes, revision, physnets)
    ctx.audit("update", "network_segment_range", row.id, before, snapshot(row))
    return _one(ctx, row, [])


@router.delete("/{range_id}", status_code=204)
def delete_range(
    range_id: str, revision: IfMatch, ctx: Context = writer(Permission.DELETE_NETWORK_SEGMENT_RANGE)
) -> Response:
    row = segment_ranges.get(ctx.session, ctx.principal, range_id, lock=True)
    before = snapshot(row)
    segment_ranges.delete_(ctx.session, ctx.principal, row, revision)
    ctx.audit("delete", "network_segment_range", range_id, before=before)
    return no_content()
