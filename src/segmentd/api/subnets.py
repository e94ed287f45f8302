"""/v2.0/subnets, and the subnets of a segment or a host: thin handlers over ``services.subnets``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.responses import Response

from segmentd.api import render, schemas
from segmentd.api.params import (
    HostName,
    IfMatch,
    ListParams,
    bulk_items,
    fields_param,
    list_params,
)
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.api.segments import SEGMENT
from segmentd.authz import Permission, Scope, can
from segmentd.db.base import Page
from segmentd.db.models import Subnet
from segmentd.services import subnets

router = routes("/v2.0/subnets", "subnets")
segment_router = routes("/v2.0/segments", "segments")
host_router = routes("/v2.0/hosts", "host mapping")

SUBNET = Resource(
    "subnet",
    Permission.GET_SUBNET,
    subnets.get,
    subnets.target,
    event_view=lambda call, subnet: schemas.subnet_view(subnet, True),
)

Fields = Annotated[list[str], Depends(fields_param(schemas.SUBNET_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(subnets.LIST_SPEC, schemas.SUBNET_FIELDS))]


def view(call: Call, subnet: Subnet) -> dict[str, Any]:
    # get_subnet:segment_id is admin-only in Neutron's defaults.
    show_segment = can(call.caller, Permission.GET_SUBNET_SEGMENT_ID, subnets.target(subnet))
    return schemas.subnet_view(subnet, show_segment)


def _pools(pools: list[schemas.AllocationPool]) -> list[tuple[str, str]]:
    return [(p.start, p.end) for p in pools]


def _routes(routes: list[schemas.HostRoute] | None) -> list[tuple[str, str]] | None:
    return None if routes is None else [(r.destination, r.nexthop) for r in routes]


def _limits(call: Call) -> subnets.Limits:
    settings = call.runtime.settings
    return subnets.Limits(settings.max_dns_nameservers, settings.max_subnet_host_routes)


def _spec(req: schemas.SubnetCreate) -> subnets.SubnetSpec:
    return subnets.SubnetSpec(
        network_id=req.network_id,
        cidr=req.cidr,
        ip_version=req.ip_version,
        name=req.name,
        description=req.description,
        gateway_ip=req.gateway_ip,
        gateway_given="gateway_ip" in req.model_fields_set,
        allocation_pools=None if req.allocation_pools is None else _pools(req.allocation_pools),
        enable_dhcp=req.enable_dhcp,
        segment_id=req.segment_id,
        project_id=req.owner,
        tags=req.tags or [],
        dns_nameservers=req.dns_nameservers or [],
        host_routes=_routes(req.host_routes) or [],
        service_types=req.service_types or [],
        ipv6_ra_mode=req.ipv6_ra_mode,
        ipv6_address_mode=req.ipv6_address_mode,
    )


@router.post("", status_code=201, response_model=schemas.SubnetOne | schemas.SubnetBulk)
@Operation(Permission.CREATE_SUBNET, "create", SUBNET)
async def create_subnet(call: CallOf, body: schemas.SubnetCreateBody) -> Response:
    specs = [_spec(req) for req in bulk_items(body.items, call.runtime.settings, "subnets")]

    def create(c: Call) -> list[Subnet]:
        return [subnets.create(c.db, c.allowed, s, c.runtime.quotas, _limits(c)) for s in specs]

    return await call.run(create, render.created("subnet", "subnets", view, body.bulk))


@router.get("", response_model=schemas.SubnetMany)
@Operation(Permission.GET_SUBNET, "list", SUBNET)
async def list_subnets(call: CallOf, params: Params) -> Response:
    return await call.run(
        lambda c: subnets.list_(c.db, c.allowed, params.query),
        render.page("subnets", view, params),
    )


@router.get("/{subnet_id}", response_model=schemas.SubnetOne)
@Operation(Permission.GET_SUBNET, "show", SUBNET)
async def show_subnet(call: CallOf, subnet_id: str, fields: Fields) -> Response:
    return await call.run(lambda c: c.target, render.one("subnet", view, fields), subnet_id)


@router.put("/{subnet_id}", response_model=schemas.SubnetOne)
@Operation(Permission.UPDATE_SUBNET, "update", SUBNET, inline=True)
async def update_subnet(
    call: CallOf, subnet_id: str, body: schemas.SubnetUpdateBody, revision: IfMatch
) -> Response:
    req = body.subnet
    given = frozenset(req.model_fields_set)
    changes = subnets.SubnetUpdate(
        name=req.name,
        description=req.description,
        gateway_ip=req.gateway_ip,
        allocation_pools=_pools(req.allocation_pools) if "allocation_pools" in given else None,
        enable_dhcp=req.enable_dhcp,
        segment_id=req.segment_id,
        tags=req.tags,
        # null clears, as Neutron's convert_none_to_empty_list
        dns_nameservers=(req.dns_nameservers or []) if "dns_nameservers" in given else None,
        host_routes=(_routes(req.host_routes) or []) if "host_routes" in given else None,
        service_types=(req.service_types or []) if "service_types" in given else None,
        fields_set=given,
    )
    return await call.run(
        lambda c: subnets.update(c.db, c.allowed, c.target, changes, revision, _limits(c)),
        render.one("subnet", view),
        subnet_id,
    )


@router.delete("/{subnet_id}", status_code=204)
@Operation(Permission.DELETE_SUBNET, "delete", SUBNET)
async def delete_subnet(call: CallOf, subnet_id: str, revision: IfMatch) -> Response:
    return await call.run(lambda c: subnets.delete(c.db, c.target, revision), None, subnet_id)


def _visible_subnets(c: Call, params: ListParams, condition: Any) -> Any:
    """The subnets on a segment or host that the caller may see as subnets."""
    seen = Scope(c.caller, Permission.GET_SUBNET)
    return subnets.list_(c.db, seen, params.query, condition)


@segment_router.get("/{segment_id}/subnets", response_model=schemas.SubnetMany)
@Operation(Permission.GET_SEGMENT, "show", SEGMENT)
async def list_segment_subnets(call: CallOf, segment_id: str, params: Params) -> Response:
    """Read-only: the subnets (and so address ranges) bound to one segment; admin-only."""
    return await call.run(
        lambda c: _visible_subnets(c, params, subnets.on_segment(c.target.id)),
        render.page("subnets", view, params),
        segment_id,
    )


@host_router.get("/{host}/subnets", response_model=schemas.SubnetMany)
@Operation(Permission.GET_SEGMENT_HOST_MAPPING, "list")
async def list_host_subnets(call: CallOf, host: HostName, params: Params) -> Response:
    """Read-only: the subnets (address ranges) ports on ``host`` can use; admin-only."""

    def find(c: Call) -> Any:
        if not c.allowed.unrestricted():  # the mapping has no project: all of it or none
            return Page([], False)
        return _visible_subnets(c, params, subnets.on_host(host))

    return await call.run(find, render.page("subnets", view, params))
