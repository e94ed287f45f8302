"""/v2.0/quotas: Neutron's quota resource (and quota-details) for networks,
subnets and segments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import Field
from starlette.responses import Response

from segmentd.api import render, schemas
from segmentd.api.params import ListParams, list_params
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.authz import Permission
from segmentd.services import quotas
from segmentd.services.quotas import QuotaSet

router = routes("/v2.0/quotas", "quotas")

Limit = Annotated[int, Field(ge=-1, le=2**31 - 1)]


class QuotaUpdate(schemas.Strict):
    network: Limit | None = None
    subnet: Limit | None = None
    segment: Limit | None = None


class QuotaUpdateBody(schemas.Strict):
    quota: QuotaUpdate


class QuotaView(schemas.View):
    network: int
    subnet: int
    segment: int
    project_id: str
    tenant_id: str


class QuotaOne(schemas.View):
    quota: QuotaView


class QuotaMany(schemas.View):
    quotas: list[QuotaView]
    quotas_links: schemas.Links = None


class UsageOf(schemas.View):
    limit: int
    used: int
    reserved: int


class QuotaDetails(schemas.View):
    network: UsageOf
    subnet: UsageOf
    segment: UsageOf


class QuotaDetailsOne(schemas.View):
    quota: QuotaDetails


QUOTA = Resource("quota", Permission.GET_QUOTA, quotas.get, quotas.target, lambda q: dict(q.limits))
Params = Annotated[ListParams, Depends(list_params(quotas.LIST_SPEC, frozenset()))]


def view(call: Call, found: QuotaSet) -> dict[str, Any]:
    limits = found.effective(call.runtime.quotas)
    return {**limits, "project_id": found.project_id, "tenant_id": found.project_id}


@router.get("", response_model=QuotaMany)
@Operation(Permission.GET_QUOTA, "list", QUOTA)
async def list_quotas(call: CallOf, params: Params) -> Response:
    return await call.run(
        lambda c: quotas.list_(c.db, c.allowed, params.query),
        render.page("quotas", view, params),
    )


@router.get("/{project_id}", response_model=QuotaOne)
@Operation(Permission.GET_QUOTA, "show", QUOTA)
async def show_quota(call: CallOf, project_id: str) -> Response:
    return await call.run(lambda c: c.target, render.one("quota", view), project_id)


@router.get("/{project_id}/default", response_model=QuotaOne)
@Operation(Permission.GET_QUOTA, "show", QUOTA)
async def show_default_quota(call: CallOf, project_id: str) -> Response:
    return await call.run(lambda c: QuotaSet(project_id), render.one("quota", view), project_id)


@router.get("/{project_id}/details", response_model=QuotaDetailsOne)
@Operation(Permission.GET_QUOTA, "show", QUOTA)
async def show_quota_details(call: CallOf, project_id: str) -> Response:
    defaults = call.runtime.quotas
    return await call.run(
        lambda c: quotas.details(c.db, c.target, defaults),
        render.one("quota", lambda c, found: found),
        project_id,
    )


@router.put("/{project_id}", response_model=QuotaOne)
@Operation(Permission.UPDATE_QUOTA, "update", QUOTA)
async def update_quota(call: CallOf, project_id: str, body: QuotaUpdateBody) -> Response:
    limits = body.quota.model_dump(exclude_none=True)
    return await call.run(
        lambda c: quotas.update(c.db, c.target, limits), render.one("quota", view), project_id
    )


@router.delete("/{project_id}", status_code=204)
@Operation(Permission.DELETE_QUOTA, "delete", QUOTA)
async def delete_quota(call: CallOf, project_id: str) -> Response:
    return await call.run(lambda c: quotas.reset(c.db, c.target), None, project_id)
