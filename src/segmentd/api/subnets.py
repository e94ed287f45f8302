"""/v2.0/subnets, and the subnets of one segment: thin handlers over ``services.subnets``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from segmentd import errors
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
from segmentd.authz import Permission, Principal, can
from segmentd.db.base import Page
from segmentd.db.models import HOST_LEN, Subnet
from segmentd.services import subnets
from segmentd.services.agents import HOST_RE
from segmentd.services.audit import snapshot

router = APIRouter(route_class=TransactionalRoute, prefix="/v2.0/subnets", tags=["subnets"])
segment_router = APIRouter(
    route_class=TransactionalRoute, prefix="/v2.0/segments", tags=["segments"]
)
host_router = APIRouter(route_class=TransactionalRoute, prefix="/v2.0/hosts", tags=["host mapping"])

Fields = Annotated[list[str], Depends(fields_param(schemas.SUBNET_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(subnets.LIST_SPEC, schemas.SUBNET_FIELDS))]


def _view(subnet: Subnet, principal: Principal, fields: list[str]) -> dict[str, object]:
    show_segment = can(principal, Permission.GET_SUBNET_SEGMENT_ID)
    return schemas.project(schemas.subnet_view(subnet, show_segment), fields)


def _pools(pools: list[schemas.AllocationPool]) -> list[tuple[str, str]]:
    return [(p.start, p.end) for p in pools]


def _page(request: Request, page: Page, params: ListParams, principal: Principal) -> Response:
    views = [_view(s, principal, params.fields) for s in page.items]
    return json_response(
        schemas.collection(request.url, "subnets", views, page, params.query, params.limit_given)
    )


@router.post("", status_code=201)
def create_subnet(
    body: schemas.SubnetCreateBody, ctx: Context = writer(Permission.CREATE_SUBNET)
) -> Response:
    req = body.subnet
    spec = subnets.SubnetSpec(
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
    )
    subnet = subnets.create(ctx.session, ctx.principal, spec)
    ctx.audit("create", "subnet", subnet.id, after=snapshot(subnet))
    return json_response({"subnet": _view(subnet, ctx.principal, [])}, 201)


@router.get("")
def list_subnets(
    request: Request, params: Params, ctx: Context = reader(Permission.GET_SUBNET)
) -> Response:
    page = subnets.list_(ctx.session, ctx.principal, params.query)
    return _page(request, page, params, ctx.principal)


@router.get("/{subnet_id}")
def show_subnet(
    subnet_id: str, fields: Fields, ctx: Context = reader(Permission.GET_SUBNET)
) -> Response:
    subnet = subnets.get(ctx.session, ctx.principal, subnet_id)
    return json_response({"subnet": _view(subnet, ctx.principal, fields)})


@router.put("/{subnet_id}")
def update_subnet(
    subnet_id: str,
    body: schemas.SubnetUpdateBody,
    revision: IfMatch,
    ctx: Context = writer(Permission.UPDATE_SUBNET),
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
        fields_set=given,
    )
    before = snapshot(subnets.get(ctx.session, ctx.principal, subnet_id))
    subnet = subnets.update(ctx.session, ctx.principal, subnet_id, changes, revision)
    ctx.audit("update", "subnet", subnet.id, before, snapshot(subnet))
    return json_response({"subnet": _view(subnet, ctx.principal, [])})


@router.delete("/{subnet_id}", status_code=204)
def delete_subnet(
    subnet_id: str, revision: IfMatch, ctx: Context = writer(Permission.DELETE_SUBNET)
) -> Response:
    before = snapshot(subnets.get(ctx.session, ctx.principal, subnet_id))
    subnets.delete(ctx.session, ctx.principal, subnet_id, revision)
    ctx.audit("delete", "subnet", subnet_id, before=before)
    return no_content()


@segment_router.get("/{segment_id}/subnets")
def list_segment_subnets(
    request: Request, segment_id: str, params: Params, ctx: Context = reader(Permission.GET_SEGMENT)
) -> Response:
    """Read-only: the subnets (and so address ranges) bound to one segment; admin-only."""
    page = subnets.list_for_segment(ctx.session, ctx.principal, segment_id, params.query)
    return _page(request, page, params, ctx.principal)


@host_router.get("/{host}/subnets")
def list_host_subnets(
    request: Request,
    host: str,
    params: Params,
    ctx: Context = reader(Permission.GET_SEGMENT_HOST_MAPPING),
) -> Response:
    """Read-only: the subnets (address ranges) ports on ``host`` can use; admin-only."""
    if not HOST_RE.match(host) or len(host) > HOST_LEN:
        raise errors.InvalidInput(error_message="invalid host name")
    page = subnets.list_for_host(ctx.session, ctx.principal, host, params.query)
    return _page(request, page, params, ctx.principal)
