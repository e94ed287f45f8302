"""/v2.0/segments: thin handlers over ``services.segments``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from segmentd.api import schemas
from segmentd.api.deps import (
    Context,
    IfMatch,
    ListParams,
    TransactionalRoute,
    bounded_read,
    fields_param,
    list_params,
    reader,
    writer,
)
from segmentd.api.wire import json_response, no_content
from segmentd.authz import Permission
from segmentd.db.models import Segment
from segmentd.services import segments
from segmentd.services.allocation import SegmentSpec
from segmentd.services.audit import snapshot

router = APIRouter(route_class=TransactionalRoute, prefix="/v2.0/segments", tags=["segments"])

Fields = Annotated[list[str], Depends(fields_param(schemas.SEGMENT_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(segments.LIST_SPEC, schemas.SEGMENT_FIELDS))]


def _one(
    segment: Segment | segments.SegmentRecord, fields: list[str], status: int = 200
) -> Response:
    return json_response(
        {"segment": schemas.project(schemas.segment_view(segment), fields)}, status
    )


@router.post("", status_code=201)
def create_segment(
    body: schemas.SegmentCreateBody, ctx: Context = writer(Permission.CREATE_SEGMENT)
) -> Response:
    req = body.segment
    spec = SegmentSpec(
        req.network_type, req.physical_network, req.segmentation_id, req.name, req.description
    )
    rt = ctx.runtime
    segment = segments.create(
        ctx.session,
        ctx.principal,
        req.network_id,
        spec,
        rt.drivers,
        rt.settings.allocation_retries,
        req.tags,
    )
    ctx.audit("create", "segment", segment.id, after=snapshot(segment))
    return _one(segment, [], 201)


@router.get("")
def list_segments(
    request: Request, params: Params, ctx: Context = reader(Permission.GET_SEGMENT)
) -> Response:
    page = segments.list_(ctx.session, ctx.principal, params.query)
    views = [schemas.project(schemas.segment_view(s), params.fields) for s in page.items]
    return json_response(
        schemas.collection(request.url, "segments", views, page, params.query, params.limit_given)
    )


@router.get("/{segment_id}")
@bounded_read
def show_segment(
    segment_id: str, fields: Fields, ctx: Context = reader(Permission.GET_SEGMENT)
) -> Response:
    return _one(segments.read(ctx.session, ctx.principal, segment_id), fields)


@router.put("/{segment_id}")
def update_segment(
    segment_id: str,
    body: schemas.SegmentUpdateBody,
    revision: IfMatch,
    ctx: Context = writer(Permission.UPDATE_SEGMENT),
) -> Response:
    req = body.segment
    changes = segments.SegmentUpdate(
        req.name, req.description, req.tags, frozenset(req.model_fields_set)
    )
    # Loaded once: for the audit's before-view and for the service.
    segment = segments.get(ctx.session, ctx.principal, segment_id, lock=True)
    before = snapshot(segment)
    segment = segments.update(ctx.session, ctx.principal, segment, changes, revision)
    ctx.audit("update", "segment", segment.id, before, snapshot(segment))
    return _one(segment, [])


@router.delete("/{segment_id}", status_code=204)
def delete_segment(
    segment_id: str, revision: IfMatch, ctx: Context = writer(Permission.DELETE_SEGMENT)
) -> Response:
    segment = segments.get(ctx.session, ctx.principal, segment_id)
    before = snapshot(segment)
    segments.delete(ctx.session, ctx.principal, segment, revision)
    ctx.audit("delete", "segment", segment_id, before=before)
    return no_content()
