"""/v2.0/segments: thin handlers over ``services.segments``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.responses import Response

from segmentd.api import render, schemas
from segmentd.api.params import IfMatch, ListParams, bulk_items, fields_param, list_params
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.authz import Permission
from segmentd.services import segments
from segmentd.services.allocation import SegmentSpec

router = routes("/v2.0/segments", "segments")

SEGMENT = Resource(
    "segment",
    Permission.GET_SEGMENT,
    segments.get,
    segments.target,
    event_view=lambda call, segment: schemas.segment_view(segment),
    # A show reads a record, without a Session: a third of its cost.
    peek=segments.read,
    event_project=lambda call, segment: segments.project_of(segment),
    reach=segments.reach,
)

Fields = Annotated[list[str], Depends(fields_param(schemas.SEGMENT_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(segments.LIST_SPEC, schemas.SEGMENT_FIELDS))]


def view(call: Call, segment: Any) -> dict[str, Any]:
    return schemas.segment_view(segment)


@router.post("", status_code=201, response_model=schemas.SegmentOne | schemas.SegmentBulk)
@Operation(Permission.CREATE_SEGMENT, "create", SEGMENT, inline=True)
async def create_segment(call: CallOf, body: schemas.SegmentCreateBody) -> Response:
    rt = call.runtime
    reqs = bulk_items(body.items, rt.settings, "segments")
    specs = [
        (
            r,
            SegmentSpec(
                r.network_type, r.physical_network, r.segmentation_id, r.name, r.description
            ),
        )
        for r in reqs
    ]

    def create(c: Call) -> list[Any]:
        retries = rt.settings.allocation_retries
        return [
            segments.create(
                c.db, c.allowed, req.network_id, spec, rt.drivers, retries, rt.quotas, req.tags
            )
            for req, spec in specs
        ]

    return await call.run(create, render.created("segment", "segments", view, body.bulk))


@router.get("", response_model=schemas.SegmentMany)
@Operation(Permission.GET_SEGMENT, "list", SEGMENT)
async def list_segments(call: CallOf, params: Params) -> Response:
    return await call.run(
        lambda c: segments.list_(c.db, c.allowed, params.query),
        render.page("segments", view, params),
    )


@router.get("/{segment_id}", response_model=schemas.SegmentOne)
@Operation(Permission.GET_SEGMENT, "show", SEGMENT, inline=True)
async def show_segment(call: CallOf, segment_id: str, fields: Fields) -> Response:
    return await call.run(lambda c: c.target, render.one("segment", view, fields), segment_id)


@router.put("/{segment_id}", response_model=schemas.SegmentOne)
@Operation(Permission.UPDATE_SEGMENT, "update", SEGMENT, inline=True)
async def update_segment(
    call: CallOf, segment_id: str, body: schemas.SegmentUpdateBody, revision: IfMatch
) -> Response:
    req = body.segment
    changes = segments.SegmentUpdate(
        req.name, req.description, req.tags, frozenset(req.model_fields_set)
    )
    return await call.run(
        lambda c: segments.update(c.db, c.target, changes, revision),
        render.one("segment", view),
        segment_id,
    )


@router.delete("/{segment_id}", status_code=204)
@Operation(Permission.DELETE_SEGMENT, "delete", SEGMENT, inline=True)
async def delete_segment(call: CallOf, segment_id: str, revision: IfMatch) -> Response:
    return await call.run(lambda c: segments.delete(c.db, c.target, revision), None, segment_id)
