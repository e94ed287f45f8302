"""``/v2.0/{collection}/{id}/tags``: Neutron's tag sub-resource (``standard-attr-tag``).

Reading the tags takes the permission that reads the parent; changing them
the one that updates it, so the tags follow the parent's policy and a
policy override of ``update_network`` moves both.  Each change is audited as
an update of the parent.  Statuses are Neutron's (``Tagging.get_resources``):
list 200, check 204, replace 200, add one 201, add several 201, remove 204.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from segmentd.api import schemas
from segmentd.api.networks import NETWORK
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.api.segment_ranges import RANGE
from segmentd.api.segments import SEGMENT
from segmentd.api.subnets import SUBNET
from segmentd.api.wire import json_response
from segmentd.authz import Permission
from segmentd.services import tags
from segmentd.services.tags import Tagged


def _listing(call: Call, resource: Any) -> Response:
    return json_response({"tags": tags.names(resource)})


def _created(call: Call, resource: Any) -> Response:
    return json_response(None, 201)  # Neutron's body here: ``null``


def tag_routes(kind: Tagged, resource: Resource[Any], update: Permission) -> APIRouter:
    """The six tag routes of one collection."""
    router = routes(f"/v2.0/{kind.collection}", kind.collection)
    reading = Operation(resource.read, "show", resource)
    changing = Operation(update, "update", resource)

    @router.get("/{resource_id}/tags", response_model=schemas.TagsView)
    @reading
    async def list_tags(call: CallOf, resource_id: str) -> Response:
        return await call.run(lambda c: c.target, _listing, resource_id)

    @router.get("/{resource_id}/tags/{tag}", status_code=204)
    @reading
    async def check_tag(call: CallOf, resource_id: str, tag: schemas.TagName) -> Response:
        return await call.run(lambda c: tags.require(c.target, tag), None, resource_id)

    @router.put("/{resource_id}/tags", response_model=schemas.TagsView)
    @changing
    async def replace_tags(call: CallOf, resource_id: str, body: schemas.TagsBody) -> Response:
        return await call.run(
            lambda c: tags.replace(c.db, kind, c.target, body.tags), _listing, resource_id
        )

    @router.post("/{resource_id}/tags", status_code=201, response_model=schemas.TagsView)
    @changing
    async def add_tags(call: CallOf, resource_id: str, body: schemas.TagsBody) -> Response:
        def added(c: Call, resource: Any) -> Response:
            return json_response({"tags": body.tags}, 201)

        return await call.run(
            lambda c: tags.add(c.db, kind, c.target, body.tags), added, resource_id
        )

    @router.put("/{resource_id}/tags/{tag}", status_code=201)
    @changing
    async def add_tag(call: CallOf, resource_id: str, tag: schemas.TagName) -> Response:
        return await call.run(
            lambda c: tags.add(c.db, kind, c.target, [tag]), _created, resource_id
        )

    @router.delete("/{resource_id}/tags", status_code=204)
    @changing
    async def clear_tags(call: CallOf, resource_id: str) -> Response:
        return await call.run(lambda c: tags.clear(c.db, kind, c.target), None, resource_id)

    @router.delete("/{resource_id}/tags/{tag}", status_code=204)
    @changing
    async def remove_tag(call: CallOf, resource_id: str, tag: schemas.TagName) -> Response:
        return await call.run(lambda c: tags.remove(c.db, kind, c.target, tag), None, resource_id)

    return router


ROUTERS = (
    tag_routes(tags.NETWORKS, NETWORK, Permission.UPDATE_NETWORK),
    tag_routes(tags.SUBNETS, SUBNET, Permission.UPDATE_SUBNET),
    tag_routes(tags.SEGMENTS, SEGMENT, Permission.UPDATE_SEGMENT),
    tag_routes(tags.SEGMENT_RANGES, RANGE, Permission.UPDATE_NETWORK_SEGMENT_RANGE),
)
