"""/v2.0/network_segment_ranges: thin handlers over ``services.segment_ranges``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends
from starlette.responses import Response

from segmentd.api import render, schemas
from segmentd.api.params import IfMatch, ListParams, fields_param, list_params
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.authz import Permission
from segmentd.db.models import NetworkSegmentRange
from segmentd.services import segment_ranges

router = routes("/v2.0/network_segment_ranges", "network_segment_ranges")

RANGE = Resource(
    "network_segment_range",
    Permission.GET_NETWORK_SEGMENT_RANGE,
    segment_ranges.get,
    segment_ranges.target,
    # Events carry the stored attributes; the computed usage costs queries.
    event_view=lambda call, row: schemas.range_view(row, None),
)
KEY = "network_segment_range"

Fields = Annotated[list[str], Depends(fields_param(schemas.RANGE_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(segment_ranges.LIST_SPEC, schemas.RANGE_FIELDS))]


def viewer(fields: Sequence[str] = ()) -> render.View:
    """The range's view; its computed attributes cost queries, so they are
    left out when ``fields`` asks for none of them."""
    computed = not fields or bool(set(schemas.RANGE_COMPUTED) & set(fields))

    def view(call: Call, row: NetworkSegmentRange) -> dict[str, Any]:
        cap = call.runtime.settings.segment_range_detail_max
        usage = segment_ranges.usage(call.db, row, cap) if computed else None
        return schemas.range_view(row, usage)

    return view


@router.post("", status_code=201, response_model=schemas.RangeOne)
@Operation(Permission.CREATE_NETWORK_SEGMENT_RANGE, "create", RANGE)
async def create_range(call: CallOf, body: schemas.RangeCreateBody) -> Response:
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
    physnets = call.runtime.settings.vlan_physnets()
    return await call.run(
        lambda c: segment_ranges.create(c.db, c.allowed, spec, physnets),
        render.one(KEY, viewer(), status=201),
    )


@router.get("", response_model=schemas.RangeMany)
@Operation(Permission.GET_NETWORK_SEGMENT_RANGE, "list", RANGE)
async def list_ranges(call: CallOf, params: Params) -> Response:
    return await call.run(
        lambda c: segment_ranges.list_(c.db, c.allowed, params.query),
        render.page("network_segment_ranges", viewer(params.fields), params),
    )


@router.get("/{range_id}", response_model=schemas.RangeOne)
@Operation(Permission.GET_NETWORK_SEGMENT_RANGE, "show", RANGE)
async def show_range(call: CallOf, range_id: str, fields: Fields) -> Response:
    return await call.run(lambda c: c.target, render.one(KEY, viewer(fields), fields), range_id)


@router.put("/{range_id}", response_model=schemas.RangeOne)
@Operation(Permission.UPDATE_NETWORK_SEGMENT_RANGE, "update", RANGE, inline=True)
async def update_range(
    call: CallOf, range_id: str, body: schemas.RangeUpdateBody, revision: IfMatch
) -> Response:
    req = body.network_segment_range
    changes = segment_ranges.RangeUpdate(
        req.name, req.description, req.minimum, req.maximum, req.tags
    )
    physnets = call.runtime.settings.vlan_physnets()
    return await call.run(
        lambda c: segment_ranges.update(c.db, c.target, changes, revision, physnets),
        render.one(KEY, viewer()),
        range_id,
    )


@router.delete("/{range_id}", status_code=204)
@Operation(Permission.DELETE_NETWORK_SEGMENT_RANGE, "delete", RANGE)
async def delete_range(call: CallOf, range_id: str, revision: IfMatch) -> Response:
    return await call.run(
        lambda c: segment_ranges.delete_(c.db, c.target, revision), None, range_id
    )
