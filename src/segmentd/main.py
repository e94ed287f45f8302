"""Composition root: builds the engine, runtime and routers into an ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from segmentd import __version__
from segmentd.api import (
    agents,
    faults,
    guards,
    host_mapping,
    identity,
    identity_admin,
    networks,
    ops,
    quotas,
    root,
    segments,
    subnets,
    tags,
)
from segmentd.api import segment_ranges as segment_range_routes
from segmentd.api.observability import Metrics, ObservabilityMiddleware
from segmentd.api.runtime import HandlerSlots, Runtime
from segmentd.api.wire import TrailingSlash
from segmentd.authz import Policy
from segmentd.config import Settings, load_settings
from segmentd.db import migrate
from segmentd.db.base import Database
from segmentd.identity import keystone, tokens
from segmentd.identity.passwords import Passwords
from segmentd.ratelimit import RateLimits, RatePolicy, build_limiter
from segmentd.services import audit, segment_ranges
from segmentd.services.allocation import build_drivers
from segmentd.services.health import Readiness, probe_engine
from segmentd.services.segments import MtuPolicy


def build_limits(settings: Settings) -> RateLimits:
    if not settings.ratelimit_enabled:
        return RateLimits()
    limiter = build_limiter(
        settings.ratelimit_storage_url,
        settings.ratelimit_strategy,
        settings.ratelimit_key_prefix,
        settings.ratelimit_fail_open,
    )
    defaults = {
        "read": settings.ratelimit_read,
        "write": settings.ratelimit_write,
        "report": settings.ratelimit_report,
        "anonymous": settings.ratelimit_anonymous,
        "login": settings.ratelimit_login,
        "login_address": settings.ratelimit_login_address,
    }
    return RateLimits(limiter, RatePolicy(defaults, settings.ratelimit_roles))


def build_runtime(settings: Settings, **engine_kwargs: Any) -> Runtime:
    db = Database.open(
        settings.database_url,
        settings.db_statement_timeout_ms,
        settings.sqlite_busy_timeout_ms,
        **engine_kwargs,
    )
    with db.transaction(write=True) as session:
        # Every worker does this at start; it is idempotent and race-free.
        segment_ranges.sync_default_ranges(session, settings.default_ranges())
    tenant_types = [t.strip() for t in settings.tenant_network_types.split(",") if t.strip()]
    return Runtime(
        settings=settings,
        db=db,
        drivers=build_drivers(settings),
        tenant_types=tenant_types,
        policy=Policy.from_file(settings.policy_file),
        token_cache=tokens.TokenCache(settings.token_cache_seconds),
        passwords=Passwords(
            settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
        ),
        limits=build_limits(settings),
        slots=HandlerSlots.for_settings(settings),
        denials=audit.DenialCounter(settings.audit_denial_window_seconds),
        quotas=settings.quota_defaults(),
        mtus=MtuPolicy(settings.global_physnet_mtu, settings.path_mtu, settings.physnet_mtu_map()),
        keystone=keystone.build_validator(
            settings.keystone_authtoken, settings.ratelimit_key_prefix
        )
        if settings.auth_strategy == "keystone"
        else None,
    )


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else load_settings())
    app = FastAPI(
        title="segmentd",
        version=__version__,
        # segmentd has its own metrics and access log; FastAPI's OpenTelemetry
        # hooks would otherwise ask on every request whether a provider is set.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # The schema is served by a route of its own, to authenticated
        # callers (root.openapi); no interactive docs pages.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Neutron's clients always send JSON; a request without a Content-Type
        # is parsed as JSON too.  Tokens in headers, not cookies, defeat CSRF.
        strict_content_type=False,
    )
    app.state.runtime = runtime = runtime or build_runtime(settings)
    metrics = Metrics()
    app.state.ops = ops.Ops(
        metrics=metrics,
        readiness=Readiness(
            probe_engine(settings.database_url),
            migrate.HEAD,
            settings.readiness_cache_seconds,
        ),
    )
    faults.install(app)
    # Matched in this order, route by route: the resources most requests
    # name come first (no two routers' paths overlap, so order is free).
    # Routes join the app's own table (not as included routers): one flat
    # table to match, and to walk in the fail-closed test.
    routers = (
        segments.router,
        networks.router,
        subnets.router,
        subnets.segment_router,
        subnets.host_router,
        segment_range_routes.router,
        *tags.ROUTERS,
        agents.router,
        host_mapping.router,
        quotas.router,
        root.router,
        ops.router,
        # With an external Keystone the built-in identity is off: /identity/* is 404.
        *(() if settings.auth_strategy == "keystone" else (identity.router, identity_admin.router)),
    )
    for router in routers:
        app.router.routes.extend(router.routes)
    # Outermost last: request id, logs and metrics (which see the boundary's
    # 500s and the guards' 413s/503s), the error boundary, and innermost the
    # request guards (body size, deadline, rate-limit headers).
    app.add_middleware(TrailingSlash)
    app.add_middleware(
        guards.RequestGuards,
        max_body_bytes=settings.max_request_body_bytes,
        timeout_s=settings.request_timeout_seconds,
    )
    app.add_middleware(faults.ErrorBoundary)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, engine=runtime.db.writer)
    return app
