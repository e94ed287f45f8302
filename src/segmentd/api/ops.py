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

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from segmentd import errors
from segmentd.api import schemas
from segmentd.api.deps import Context, ListParams, TransactionalRoute, list_params, reader, runtime
from segmentd.api.wire import json_response
from segmentd.authz import Permission
from segmentd.db.audit import AuditEvent
from segmentd.observability import METRICS_CONTENT_TYPE, Metrics
from segmentd.services import audit, usage
from segmentd.services.health import Readiness

router = APIRouter(route_class=TransactionalRoute, tags=["operations"])

AUDIT_FIELDS = frozenset(
    {
        "id",
        "created_at",
        "request_id",
        "user_id",
        "project_id",
        "action",
        "resource_type",
        "resource_id",
        "permission",
        "detail",
        "before",
        "after",
    }
)
USAGE_FIELDS = frozenset(
    {
        "id",
        "name",
        "network_type",
        "physical_network",
        "minimum",
        "maximum",
        "default",
        "shared",
        "project_id",
        "size",
        "used",
        "free",
        "next_free",
    }
)
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
def readyz(request: Request) -> Response:
    reason = _ops(request).readiness.reason()
    if reason is None:
        return json_response({"status": "ready"})
    return json_response({"status": "unavailable", "reason": reason}, 503, {"Retry-After": "1"})


def _metrics_allowed(request: Request) -> bool:
    token = runtime(request).settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, f"Bearer {token.get_secret_value()}".encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/metrics")
def metrics(request: Request) -> Response:
    if not _metrics_allowed(request):
        raise errors.Forbidden()
    rt = runtime(request)
    body = _ops(request).metrics.render(rt.write_sessions.kw["bind"], rt.read_sessions)
    return Response(body, media_type=METRICS_CONTENT_TYPE)


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


@router.get("/v2.0/audit-events")
def list_audit_events(
    request: Request, params: AuditParams, ctx: Context = reader(Permission.GET_AUDIT_EVENT)
) -> Response:
    page = audit.list_(ctx.session, ctx.principal, params.query)
    views = [schemas.project(audit_view(e), params.fields) for e in page.items]
    return json_response(
        schemas.collection(
            request.url, "audit_events", views, page, params.query, params.limit_given
        )
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


@router.get("/v2.0/network-segment-range-usage")
def list_range_usage(
    request: Request,
    params: UsageParams,
    ctx: Context = reader(Permission.GET_ALLOCATION_USAGE),
) -> Response:
    params.query.limit = min(params.query.limit, USAGE_MAX_PAGE)
    page, found = usage.list_(ctx.session, ctx.principal, params.query)
    views = [schemas.project(usage_view(u), params.fields) for u in found]
    name = "network_segment_range_usage"
    return json_response(
        schemas.collection(request.url, name, views, page, params.query, params.limit_given)
    )
