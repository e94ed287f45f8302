"""Admin queries over the segment-host mapping, all paginated.

- ``GET /v2.0/segments/{segment_id}/hosts``: hosts mapped to a segment;
- ``GET /v2.0/hosts/{host}/segments``: segments mapped to a host (the
  segment list's filters, sorts and keyset pagination);
- ``GET /v2.0/segment-host-mappings``: every mapped host, filtered by
  ``include_agent_types`` / ``exclude_agent_types`` (and ``segment_id``).

Host lists page by host name: ``limit``, ``marker=<host>``, ``page_reverse``.
One permission, ``get_segment_host_mapping``, decides every one of them,
the segment of ``/segments/{id}/hosts`` included.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.responses import Response

from segmentd.api import render, schemas
from segmentd.api.params import HostName, ListParams, list_params
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.api.segments import view as segment_view
from segmentd.authz import Permission
from segmentd.services import host_queries, segments

router = routes(tag="host mapping")

MAPPING = Permission.GET_SEGMENT_HOST_MAPPING
MAPPED_SEGMENT = Resource("segment", MAPPING, segments.get, segments.target)
HOST_FIELDS = frozenset({"host"})

SegmentHosts = Annotated[
    ListParams, Depends(list_params(host_queries.SEGMENT_HOSTS_SPEC, HOST_FIELDS))
]
MappedHosts = Annotated[
    ListParams, Depends(list_params(host_queries.MAPPED_HOSTS_SPEC, HOST_FIELDS))
]
SegmentParams = Annotated[
    ListParams, Depends(list_params(segments.LIST_SPEC, schemas.SEGMENT_FIELDS))
]


def host_view(call: Call, item: host_queries.HostItem) -> dict[str, Any]:
    return {"host": item.host}


@router.get("/v2.0/segments/{segment_id}/hosts", response_model=schemas.HostMany)
@Operation(MAPPING, "show", MAPPED_SEGMENT)
async def hosts_of_segment(call: CallOf, segment_id: str, params: SegmentHosts) -> Response:
    return await call.run(
        lambda c: host_queries.hosts_of_segment(c.db, c.target, params.query),
        render.page("hosts", host_view, params),
        segment_id,
    )


@router.get("/v2.0/hosts/{host}/segments", response_model=schemas.SegmentMany)
@Operation(MAPPING, "list")
async def segments_of_host(call: CallOf, host: HostName, params: SegmentParams) -> Response:
    return await call.run(
        lambda c: host_queries.segments_of_host(c.db, c.allowed, host, params.query),
        render.page("segments", segment_view, params),
    )


@router.get("/v2.0/segment-host-mappings", response_model=schemas.MappedHostMany)
@Operation(MAPPING, "list")
async def mapped_hosts(call: CallOf, params: MappedHosts) -> Response:
    return await call.run(
        lambda c: host_queries.mapped_hosts(c.db, c.allowed, params.query),
        render.page("segment_host_mappings", host_view, params),
    )
