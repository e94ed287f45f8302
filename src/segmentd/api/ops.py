"""Operations endpoints: readiness, metrics, the audit trail, allocation usage.

``/readyz`` and ``/metrics`` take no token (probes and scrapers have none):
readiness says only "ready" or a short fixed reason; metrics need the
configured ``metrics_token`` as a bearer token, or, when none is configured,
a caller on the loopback interface.  The audit trail and allocation usage
are admin API resources like any other, with one permission each.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from segmentd import errors
from segmentd.api import render
from segmentd.api.auth import runtime_of
from segmentd.api.observability import METRICS_CONTENT_TYPE, Metrics
from segmentd.api.params import ListParams, list_params
from segmentd.api.pipeline import CallOf, Operation, routes
from segmentd.api.schemas import Links, View, field_names
from segmentd.api.wire import json_response
from segmentd.authz import Permission
from segmentd.db.audit import AuditEvent
from segmentd.services import audit, usage
from segmentd.services.health import Readiness

router = routes(tag="operations")
# Probes and scrapers have no token; /metrics checks its own (or loopback).
PROBE = Operation.public()


class AuditView(View):
    id: str
    created_at: str
    request_id: str
    user_id: str | None
    project_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    permission: str
    detail: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditMany(View):
    audit_events: list[AuditView]
    audit_events_links: Links = None


class UsageView(View):
    id: str
    name: str
    network_type: str
    physical_network: str | None
    minimum: int
    maximum: int
    default: bool
    shared: bool
    project_id: str | None
    size: int
    used: int
    free: int
    next_free: list[int]


class UsageMany(View):
    network_segment_range_usage: list[UsageView]
    network_segment_range_usage_links: Links = None


AUDIT_FIELDS = field_names(AuditView)
USAGE_FIELDS = field_names(UsageView)
USAGE_MAX_PAGE = 100  # each range costs a count and a few indexed reads

AuditParams = Annotated[ListParams, Depends(list_params(audit.LIST_SPEC, AUDIT_FIELDS))]
UsageParams = Annotated[ListParams, Depends(list_params(usage.LIST_SPEC, USAGE_FIELDS))]


@dataclass(frozen=True)
class Ops:
    """Built once by ``create_app``: what the operations endpoints need."""

    metrics: Metrics
    readiness: Readiness


def _ops(request: Request) -> Ops:
    ops: Ops = request.app.state.ops
    return ops


@router.get("/readyz")
@PROBE
async def readyz(request: Request) -> Response:
    reason = _ops(request).readiness.reason()
    if reason is None:
        return json_response({"status": "ready"})
    return json_response({"status": "unavailable", "reason": reason}, 503, {"Retry-After": "1"})


def _metrics_allowed(request: Request) -> bool:
    token = runtime_of(request).settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, f"Bearer {token.get_secret_value()}".encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/metrics")
@PROBE
async def metrics(call: CallOf, request: Request) -> Response:
    if not _metrics_allowed(request):
        raise errors.Forbidden()
    return await call.run(
        lambda c: _ops(request).metrics.render(c.runtime.db.writer, c.db),
        lambda c, body: Response(body, media_type=METRICS_CONTENT_TYPE),
    )


def audit_view(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "created_at": event.created_at.isoformat(),
        "request_id": event.request_id,
        "user_id": event.user_id,
        "project_id": event.project_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "permission": event.permission,
        "detail": event.detail,
        "before": event.before,
        "after": event.after,
    }


@router.get("/v2.0/audit-events", response_model=AuditMany)
@Operation(Permission.GET_AUDIT_EVENT, "list")
async def list_audit_events(call: CallOf, params: AuditParams) -> Response:
    return await call.run(
        lambda c: audit.list_(c.db, c.allowed, params.query),
        render.page("audit_events", lambda c, e: audit_view(e), params),
    )


def usage_view(found: usage.RangeUsage) -> dict[str, Any]:
    row = found.row
    return {
        "id": row.id,
        "name": row.name,
        "network_type": row.network_type,
        "physical_network": row.physical_network,
        "minimum": row.minimum,
        "maximum": row.maximum,
        "default": row.default,
        "shared": row.shared,
        "project_id": row.project_id,
        "size": found.size,
        "used": found.used,
        "free": found.free,
        "next_free": found.next_free,
    }


@router.get("/v2.0/network-segment-range-usage", response_model=UsageMany)
@Operation(Permission.GET_ALLOCATION_USAGE, "list")
async def list_range_usage(call: CallOf, params: UsageParams) -> Response:
    params.query.limit = min(params.query.limit, USAGE_MAX_PAGE)
    return await call.run(
        lambda c: usage.list_(c.db, c.allowed, params.query),
        render.page("network_segment_range_usage", lambda c, u: usage_view(u), params),
    )
