"""Who is calling: the principal of a request, from its headers alone.

Runs before the body is read (``pipeline.OperationRoute``), so an
unauthenticated or rate-limited caller costs no parsing.  Stays on the event
loop when that needs no I/O (a cached token, noauth headers, the in-memory
limiter); a database lookup or a Redis hit goes to a thread.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from segmentd import errors
from segmentd.api import guards
from segmentd.api.runtime import Runtime
from segmentd.authz import Policy, Principal
from segmentd.identity import keystone, tokens

AUTH_TOKEN_HEADER = "x-auth-token"  # noqa: S105 - a header name, not a secret


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def principal_of(info: tokens.TokenInfo, policy: Policy) -> Principal:
    return Principal(
        subject=info.user_id,
        project_id=info.project_id,
        roles=frozenset(info.roles),
        credential=info.kind,
        policy=policy,
        name=info.user_name,
    )


def known_caller(request: Request, rt: Runtime) -> Principal | None:
    """The caller when no database read is needed; None: ask ``looked_up_caller``.

    ``token``: ``X-Auth-Token`` must name a live token of the built-in
    identity service (here: one validated within ``token_cache_seconds``).
    ``noauth`` (development and tests; refused in production by ``config``):
    headers name the project and roles.
    """
    if rt.keystone is not None:  # auth_strategy "keystone": this process's cache
        found = rt.keystone.cached(_keystone_request(request, rt))
        return None if found is None else keystone.principal_of(found, rt.policy)
    headers = request.headers
    if rt.settings.auth_strategy == "noauth":
        project = headers.get("x-project-id", "default")[:255]
        roles = [r.strip() for r in headers.get("x-roles", "admin").split(",") if r.strip()]
        return Principal(
            subject=headers.get("x-user-id", "noauth")[:255],
            project_id=project,
            roles=frozenset(roles),
            credential="noauth",
            policy=rt.policy,
        )
    info = tokens.cached(headers.get(AUTH_TOKEN_HEADER), rt.clock(), rt.token_cache)
    return None if info is None else principal_of(info, rt.policy)


SERVICE_TOKEN_HEADER = "x-service-token"  # noqa: S105 - a header name, not a secret


def _keystone_request(request: Request, rt: Runtime) -> keystone.TokenRequest:
    headers, scope = request.headers, request.scope
    return keystone.TokenRequest(
        token=headers.get(AUTH_TOKEN_HEADER),
        service_token=headers.get(SERVICE_TOKEN_HEADER),
        method=scope["method"],
        path=scope.get("root_path", "") + scope["path"],
        now=rt.clock(),
    )


def looked_up_caller(request: Request, rt: Runtime) -> Principal:
    """The caller of a token not in the cache, validated in the database (or
    at Keystone); ``NotAuthenticated`` if unknown, counted against the client
    address so that guessing tokens is throttled too (429 once that is spent)."""
    try:
        if rt.keystone is not None:  # 401 InvalidToken or 503 IdentityUnavailable
            found = rt.keystone.validate(_keystone_request(request, rt))
            return keystone.principal_of(found, rt.policy)
        with rt.db.transaction(write=False) as session:
            raw = request.headers.get(AUTH_TOKEN_HEADER)
            info = tokens.validate_cached(session, raw, rt.clock(), rt.token_cache)
    except errors.NotAuthenticated:
        guards.limit_anonymous(request, rt.limits)
        raise
    return principal_of(info, rt.policy)


async def authenticate(request: Request, rt: Runtime, rate: str | None) -> Principal:
    """The authenticated caller, after one hit on its ``rate`` bucket."""
    principal = known_caller(request, rt)
    if principal is None:
        principal = await run_in_threadpool(looked_up_caller, request, rt)
    await charge(request, rt, principal, rate)
    return principal


async def charge(request: Request, rt: Runtime, principal: Principal, rate: str | None) -> None:
    """One hit on the caller's ``rate`` bucket (429 when it is spent), off the
    event loop when the limiter's storage blocks (Redis); the caller is then
    named in the access log."""
    if rate is not None:
        if rt.limits.blocking:
            await run_in_threadpool(guards.limit_principal, request, rt.limits, principal, rate)
        else:
            guards.limit_principal(request, rt.limits, principal, rate)
    request.state.principal = principal  # for the access log


async def limit_address(request: Request, rt: Runtime, rate: str = "anonymous") -> None:
    """One hit on the client address's ``rate`` bucket (callers without a token)."""
    if rt.limits.blocking:
        await run_in_threadpool(guards.limit_anonymous, request, rt.limits, rate)
    else:
        guards.limit_anonymous(request, rt.limits, rate)
