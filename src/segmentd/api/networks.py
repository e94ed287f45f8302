"""/v2.0/networks: thin handlers over ``services.networks``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.responses import Response

from segmentd.api import render, schemas
from segmentd.api.params import IfMatch, ListParams, bulk_items, fields_param, list_params
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.authz import Permission, attribute_permission, can
from segmentd.db.models import Network
from segmentd.services import networks
from segmentd.services.allocation import SegmentSpec

router = routes("/v2.0/networks", "networks")

NETWORK = Resource(
    "network",
    Permission.GET_NETWORK,
    networks.get,
    networks.target,
    event_view=lambda call, network: schemas.network_view(network, True),
    reach=networks.reach,
)

Fields = Annotated[list[str], Depends(fields_param(schemas.NETWORK_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(networks.LIST_SPEC, schemas.NETWORK_FIELDS))]

POLICED_VIEW_ATTRS = (*schemas.PROVIDER_ATTRS, "segments")


def view(call: Call, network: Network) -> dict[str, Any]:
    """The network as this caller may see it: each policed attribute checked."""
    principal, target = call.caller, networks.target(network)
    shown = {
        name
        for name in POLICED_VIEW_ATTRS
        if can(
            principal,
            attribute_permission("get_network", name) or Permission.CONTEXT_IS_ADMIN,
            target,
        )
    }
    full = schemas.network_view(network, bool(shown))
    for name in POLICED_VIEW_ATTRS:
        if name not in shown:
            full.pop(name, None)
    return full


def _explicit(req: schemas.NetworkCreate) -> frozenset[str]:
    """Wire names of attributes set to something other than their default."""
    fields = type(req).model_fields
    return frozenset(
        fields[name].alias or name
        for name in req.model_fields_set
        if getattr(req, name) != fields[name].get_default(call_default_factory=True)
    )


def _segments(req: schemas.NetworkCreate) -> list[SegmentSpec] | None:
    if req.segments is not None:
        return [
            SegmentSpec(s.network_type, s.physical_network, s.segmentation_id) for s in req.segments
        ]
    if req.network_type is not None:
        return [SegmentSpec(req.network_type, req.physical_network, req.segmentation_id)]
    return None


def _spec(req: schemas.NetworkCreate) -> networks.NetworkSpec:
    return networks.NetworkSpec(
        name=req.name,
        description=req.description,
        admin_state_up=req.admin_state_up,
        shared=req.shared,
        router_external=req.router_external,
        project_id=req.owner,
        mtu=req.mtu,
        tags=req.tags or [],
        segments=_segments(req),
        attributes=_explicit(req),
    )


@router.post("", status_code=201, response_model=schemas.NetworkOne | schemas.NetworkBulk)
@Operation(Permission.CREATE_NETWORK, "create", NETWORK)
async def create_network(call: CallOf, body: schemas.NetworkCreateBody) -> Response:
    rt = call.runtime
    specs = [_spec(req) for req in bulk_items(body.items, rt.settings, "networks")]

    def create(c: Call) -> list[Network]:
        retries = rt.settings.allocation_retries
        return [
            networks.create(
                c.db, c.allowed, spec, rt.drivers, rt.tenant_types, retries, rt.quotas, rt.mtus
            )
            for spec in specs
        ]

    return await call.run(create, render.created("network", "networks", view, body.bulk))


@router.get("", response_model=schemas.NetworkMany)
@Operation(Permission.GET_NETWORK, "list", NETWORK)
async def list_networks(call: CallOf, params: Params) -> Response:
    return await call.run(
        lambda c: networks.list_(c.db, c.allowed, params.query),
        render.page("networks", view, params),
    )


@router.get("/{network_id}", response_model=schemas.NetworkOne)
@Operation(Permission.GET_NETWORK, "show", NETWORK)
async def show_network(call: CallOf, network_id: str, fields: Fields) -> Response:
    return await call.run(lambda c: c.target, render.one("network", view, fields), network_id)


@router.put("/{network_id}", response_model=schemas.NetworkOne)
@Operation(Permission.UPDATE_NETWORK, "update", NETWORK, inline=True)
async def update_network(
    call: CallOf, network_id: str, body: schemas.NetworkUpdateBody, revision: IfMatch
) -> Response:
    req = body.network
    changes = networks.NetworkUpdate(
        req.name,
        req.description,
        req.admin_state_up,
        req.shared,
        req.mtu,
        req.tags,
        req.router_external,
        req.network_type,
        req.physical_network,
        req.segmentation_id,
    )
    return await call.run(
        lambda c: networks.update(
            c.db, c.allowed, c.target, changes, revision, c.runtime.mtus, c.runtime.drivers
        ),
        render.one("network", view),
        network_id,
    )


@router.delete("/{network_id}", status_code=204)
@Operation(Permission.DELETE_NETWORK, "delete", NETWORK)
async def delete_network(call: CallOf, network_id: str, revision: IfMatch) -> Response:
    return await call.run(lambda c: networks.delete(c.db, c.target, revision), None, network_id)
