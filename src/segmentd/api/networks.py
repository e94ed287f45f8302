"""/v2.0/networks: thin handlers over ``services.networks``."""

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
    fields_param,
    list_params,
    reader,
    writer,
)
from segmentd.api.wire import json_response, no_content
from segmentd.authz import Permission, Principal, attribute_permission, can
from segmentd.db.models import Network
from segmentd.services import networks
from segmentd.services.allocation import SegmentSpec
from segmentd.services.audit import snapshot

router = APIRouter(route_class=TransactionalRoute, prefix="/v2.0/networks", tags=["networks"])

Fields = Annotated[list[str], Depends(fields_param(schemas.NETWORK_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(networks.LIST_SPEC, schemas.NETWORK_FIELDS))]


POLICED_VIEW_ATTRS = (*schemas.PROVIDER_ATTRS, "segments")


def _view(network: Network, principal: Principal, fields: list[str]) -> dict[str, object]:
    """The network as this caller may see it: each policed attribute checked."""
    target = networks.target(network)
    shown = {
        name
        for name in POLICED_VIEW_ATTRS
        if can(
            principal,
            attribute_permission("get_network", name) or Permission.CONTEXT_IS_ADMIN,
            target,
        )
    }
    view = schemas.network_view(network, bool(shown))
    for name in POLICED_VIEW_ATTRS:
        if name not in shown:
            view.pop(name, None)
    return schemas.project(view, fields)


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


@router.post("", status_code=201)
def create_network(
    body: schemas.NetworkCreateBody, ctx: Context = writer(Permission.CREATE_NETWORK)
) -> Response:
    req = body.network
    spec = networks.NetworkSpec(
        name=req.name,
        description=req.description,
        admin_state_up=req.admin_state_up,
        shared=req.shared,
        project_id=req.owner,
        mtu=req.mtu,
        tags=req.tags or [],
        segments=_segments(req),
        attributes=_explicit(req),
    )
    rt = ctx.runtime
    network = networks.create(
        ctx.session,
        ctx.principal,
        spec,
        rt.drivers,
        rt.tenant_types,
        rt.settings.allocation_retries,
    )
    ctx.audit("create", "network", network.id, after=snapshot(network))
    return json_response({"network": _view(network, ctx.principal, [])}, 201)


@router.get("")
def list_networks(
    request: Request, params: Params, ctx: Context = reader(Permission.GET_NETWORK)
) -> Response:
    page = networks.list_(ctx.session, ctx.principal, params.query)
    views = [_view(n, ctx.principal, params.fields) for n in page.items]
    return json_response(
        schemas.collection(request.url, "networks", views, page, params.query, params.limit_given)
    )


@router.get("/{network_id}")
def show_network(
    network_id: str, fields: Fields, ctx: Context = reader(Permission.GET_NETWORK)
) -> Response:
    network = networks.get(ctx.session, ctx.principal, network_id)
    return json_response({"network": _view(network, ctx.principal, fields)})


@router.put("/{network_id}")
def update_network(
    network_id: str,
    body: schemas.NetworkUpdateBody,
    revision: IfMatch,
    ctx: Context = writer(Permission.UPDATE_NETWORK),
) -> Response:
    req = body.network
    changes = networks.NetworkUpdate(
        req.name, req.description, req.admin_state_up, req.shared, req.mtu, req.tags
    )
    # Loaded once: for the audit's before-view and for the service.
    network = networks.get(ctx.session, ctx.principal, network_id, lock=True)
    before = snapshot(network)
    network = networks.update(ctx.session, ctx.principal, network, changes, revision)
    ctx.audit("update", "network", network.id, before, snapshot(network))
    return json_response({"network": _view(network, ctx.principal, [])})


@router.delete("/{network_id}", status_code=204)
def delete_network(
    network_id: str, revision: IfMatch, ctx: Context = writer(Permission.DELETE_NETWORK)
) -> Response:
    network = networks.get(ctx.session, ctx.principal, network_id, lock=True)
    before = snapshot(network)
    networks.delete(ctx.session, ctx.principal, network, revision)
    ctx.audit("delete", "network", network_id, before=before)
    return no_content()
