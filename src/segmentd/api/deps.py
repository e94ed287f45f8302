"""Request-scoped dependencies: runtime, principal, transaction, list parameters."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from uuid import UUID

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, Header, Query, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from segmentd import errors
from segmentd.api import guards
from segmentd.api.wire import request_id_of
from segmentd.authz import Permission, Policy, Principal
from segmentd.config import Settings
from segmentd.db.base import statement_canceller, utcnow
from segmentd.identity import tokens
from segmentd.identity.passwords import Passwords
from segmentd.ratelimit import RateLimits
from segmentd.services import audit
from segmentd.services.allocation import TypeDriver
from segmentd.services.query import ListQuery, QuerySpec, parse_filters

F = TypeVar("F", bound=Callable[..., Any])
RESERVED_QUERY = frozenset({"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"})
_IF_MATCH = re.compile(r"^\s*revision_number=(\d{1,18})\s*$")
log = logging.getLogger("segmentd.audit")


class HandlerSlots:
    """Thread-pool slots for transactional handlers, reads and writes.

    On SQLite writes have one slot of their own: its one write connection
    serialises them anyway, and a write waiting for it should wait in the
    event loop, not park a thread that reads could use.  A limiter belongs
    to one event loop, so each loop gets its own pair (a server has one
    loop per worker; in-process test clients run one per thread).
    """

    def __init__(self, threads: int = 8, own_write_slot: bool = False) -> None:
        self.threads = threads
        self.own_write_slot = own_write_slot
        self._by_loop: weakref.WeakKeyDictionary[Any, tuple[CapacityLimiter, CapacityLimiter]]
        self._by_loop = weakref.WeakKeyDictionary()

    @classmethod
    def for_settings(cls, settings: Settings) -> HandlerSlots:
        embedded = settings.is_sqlite()
        return cls(settings.handler_threads or (2 if embedded else 8), own_write_slot=embedded)

    def limiter(self, write: bool) -> CapacityLimiter:
        loop = asyncio.get_running_loop()
        pair = self._by_loop.get(loop)
        if pair is None:
            reads = CapacityLimiter(self.threads)
            pair = self._by_loop[loop] = (
                reads,
                CapacityLimiter(1) if self.own_write_slot else reads,
            )
        return pair[1] if write else pair[0]


@dataclass(frozen=True)
class Runtime:
    """Everything built once at start-up and shared by requests (read-only)."""

    settings: Settings
    write_sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    drivers: dict[str, TypeDriver]
    tenant_types: list[str]
    policy: Policy = field(default_factory=Policy)
    passwords: Passwords = field(default_factory=Passwords)
    clock: Callable[[], dt.datetime] = utcnow
    limits: RateLimits = field(default_factory=RateLimits)
    token_cache: tokens.TokenCache = field(default_factory=lambda: tokens.TokenCache(0))
    slots: HandlerSlots = field(default_factory=HandlerSlots)

    def reads_inline(self) -> bool:
        """May a ``bounded_read`` run on the event loop?  Only on an embedded
        database (no network round trip to wait for) and while a read
        connection is free (no pool wait): the loop must never block."""
        if not self.settings.is_sqlite():
            return False
        pool: Any = self.read_sessions.kw["bind"].pool
        return bool(pool.checkedout() < pool.size())

    def close(self) -> None:
        """Closes the connection pools (tests and tools that build runtimes)."""
        for sessions in (self.write_sessions, self.read_sessions):
            sessions.kw["bind"].dispose()


class Context:
    """One request's caller and, while its handler runs, its transaction.

    The dependency (``reader``/``writer``) authenticates on the event loop;
    the handler's thread opens the transaction (``TransactionalRoute``), so a
    request crosses into the thread pool once, not once per dependency step.
    """

    __slots__ = (
        "_request",
        "_session",
        "permission",
        "principal",
        "request_id",
        "runtime",
        "write",
    )

    def __init__(
        self,
        principal: Principal,
        runtime: Runtime,
        permission: Permission,
        write: bool,
        request: Request,
    ) -> None:
        self.principal = principal
        self.runtime = runtime
        self.permission = permission
        self.write = write
        self.request_id = request_id_of(request.scope)
        self._request = request
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("no transaction: the handler's router needs TransactionalRoute")
        return self._session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The handler's transaction: committed before the response is sent."""
        rt = self.runtime
        try:
            with _transaction(
                rt.write_sessions if self.write else rt.read_sessions, self._request
            ) as session:
                self._session = session
                yield session
        except errors.Forbidden as exc:
            if self.write:  # refused mutations are recorded (CWE-778); reads are not
                _record_denial(
                    self._request, rt, self.principal, self.permission, self.request_id, exc
                )
            raise
        finally:
            self._session = None

    def audit(
        self,
        action: str,
        resource_type: str,
        resource_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Record this request's mutation in the request's transaction (see ``services.audit``)."""
        audit.record(
            self.session,
            self.principal,
            self.request_id,
            action,
            resource_type,
            resource_id,
            permission=str(self.permission),
            before=before,
            after=after,
        )


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


AUTH_TOKEN_HEADER = "x-auth-token"  # noqa: S105 - a header name, not a secret


def known_caller(request: Request, rt: Runtime) -> Principal | None:
    """The caller when no database read is needed; None: ask ``looked_up_caller``.

    ``token``: ``X-Auth-Token`` must name a live token of the built-in
    identity service (here: one validated within ``token_cache_seconds``).
    ``noauth`` (development and tests; refused in production by ``config``):
    headers name the project and roles.
    """
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


def principal_of(info: tokens.TokenInfo, policy: Policy) -> Principal:
    return Principal(
        subject=info.user_id,
        project_id=info.project_id,
        roles=frozenset(info.roles),
        credential=info.kind,
        policy=policy,
        name=info.user_name,
    )


def looked_up_caller(request: Request, rt: Runtime) -> Principal:
    """The caller of a token not in the cache, validated in the database;
    ``NotAuthenticated`` if unknown, counted against the client address so
    that guessing tokens is throttled too (429 once that is spent)."""
    try:
        with rt.read_sessions() as session, session.begin():
            raw = request.headers.get(AUTH_TOKEN_HEADER)
            info = tokens.validate_cached(session, raw, rt.clock(), rt.token_cache)
    except errors.NotAuthenticated:
        guards.limit_anonymous(request, rt.limits)
        raise
    return principal_of(info, rt.policy)


async def caller(request: Request, rt: Runtime, klass: str) -> Principal:
    """The authenticated caller, after one hit on its rate-limit bucket.

    Both stay on the event loop when they need no I/O (a cached token, an
    in-memory limiter); a database lookup or a Redis hit goes to the pool.
    """
    principal = known_caller(request, rt)
    if principal is None:
        principal = await run_in_threadpool(looked_up_caller, request, rt)
    if rt.limits.blocking:
        await run_in_threadpool(guards.limit_principal, request, rt.limits, principal, klass)
    else:
        guards.limit_principal(request, rt.limits, principal, klass)
    request.state.principal = principal  # for the access log
    return principal


async def authenticated(request: Request) -> Principal:
    """Dependency for routes that need a caller but no permission (discovery)."""
    return await caller(request, runtime(request), "read")


@contextmanager
def _transaction(sessions: sessionmaker[Session], request: Request) -> Iterator[Session]:
    # Commits before the response is sent, so a 2xx is only ever answered for
    # a committed change.  A request whose deadline passed rolls back
    # instead: its client was answered 503.
    deadline = guards.deadline_of(request.scope)
    with sessions() as session, session.begin():
        if deadline is not None:
            deadline.watch(statement_canceller(session.connection()))
        try:
            yield session
        finally:
            if deadline is not None:
                deadline.watch(None)
        if not guards.may_commit(request.scope):
            raise errors.RequestTimeout()


def context(permission: Permission, *, write: bool) -> Callable[..., Awaitable[Context]]:
    """Dependency factory: every route declares the one permission it exercises."""

    klass = (
        "report" if permission is Permission.CREATE_AGENT_REPORT else "write" if write else "read"
    )

    async def dependency(request: Request) -> Context:
        rt = runtime(request)
        try:
            principal = await caller(request, rt, klass)
        except errors.NotAuthenticated as exc:
            if write:  # refused mutations are recorded (CWE-778); reads are not
                rid = request_id_of(request.scope)
                await run_in_threadpool(_record_denial, request, rt, None, permission, rid, exc)
            raise
        return Context(principal, rt, permission, write, request)

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def bounded_read(endpoint: F) -> F:
    """Marks a handler whose database work is bounded and small: a read by
    primary key.  On an embedded database it runs on the event loop
    (``Runtime.reads_inline``), sparing the thread-pool crossing, which
    measured about 0.1 ms of CPU, a fifth of a segment GET."""
    endpoint.bounded_read = True  # type: ignore[attr-defined]
    return endpoint


def in_transaction(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` run inside its ``Context``'s transaction, in one thread.

    That thread is a thread-pool worker, or the event loop itself for a
    ``bounded_read`` when the runtime allows.  Endpoints without a
    ``Context`` parameter are returned unchanged.
    """
    signature = inspect.signature(endpoint, eval_str=True)
    names = [
        name
        for name, param in signature.parameters.items()
        if hasattr(getattr(param.default, "dependency", None), "permission")
    ]
    if not names:
        return endpoint
    if inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{endpoint.__name__}: transactional endpoints are plain functions")
    (name,) = names
    inline = getattr(endpoint, "bounded_read", False)

    def body(kwargs: dict[str, Any]) -> Any:
        ctx: Context = kwargs[name]
        with ctx.transaction():
            return endpoint(**kwargs)

    async def run(**kwargs: Any) -> Any:
        ctx: Context = kwargs[name]
        if inline and ctx.runtime.reads_inline():
            return body(kwargs)
        limiter = ctx.runtime.slots.limiter(ctx.write)
        return await anyio.to_thread.run_sync(body, kwargs, limiter=limiter)

    # FastAPI reads the parameters from __signature__.  No __wrapped__: FastAPI
    # would unwrap it, see a plain function and call ``run`` in a thread.
    run.__signature__ = signature  # type: ignore[attr-defined]
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(run, attr, getattr(endpoint, attr))
    return run


class TransactionalRoute(APIRoute):
    """A route whose handler runs in its request's transaction (``in_transaction``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_transaction(endpoint), **kwargs)


def _record_denial(
    request: Request,
    rt: Runtime,
    principal: Principal | None,
    permission: Permission,
    rid: str,
    exc: errors.SegmentdError,
) -> None:
    reason = "forbidden" if isinstance(exc, errors.Forbidden) else "not_authenticated"
    resource_id = next((str(v)[:255] for v in request.path_params.values()), None)
    try:
        audit.record_denial(rt.write_sessions, principal, rid, str(permission), resource_id, reason)
    except Exception:  # the refusal stands even if it cannot be recorded; say so loudly
        log.error("could not record denied %s request_id=%s", permission, rid, exc_info=True)


def reader(permission: Permission) -> Any:
    return Depends(context(permission, write=False))


def writer(permission: Permission) -> Any:
    return Depends(context(permission, write=True))


async def if_match(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """``If-Match: revision_number=N`` -> N (compare-and-swap updates)."""
    if if_match is None:
        return None
    found = _IF_MATCH.match(if_match)
    if found is None:
        raise errors.InvalidInput(error_message="If-Match must be 'revision_number=<integer>'")
    return int(found.group(1))


IfMatch = Annotated[int | None, Depends(if_match)]


@dataclass(frozen=True)
class ListParams:
    query: ListQuery
    fields: list[str]
    limit_given: bool


def list_params(
    spec: QuerySpec, field_names: frozenset[str]
) -> Callable[..., Awaitable[ListParams]]:
    """Dependency factory parsing Neutron list parameters against allow-lists."""

    async def dependency(
        request: Request,
        limit: Annotated[int | None, Query(ge=0)] = None,
        marker: Annotated[str | None, Query(max_length=36)] = None,
        page_reverse: Annotated[bool, Query()] = False,
        sort_key: Annotated[list[str] | None, Query()] = None,
        sort_dir: Annotated[list[str] | None, Query()] = None,
        fields: Annotated[list[str] | None, Query()] = None,
    ) -> ListParams:
        settings = runtime(request).settings
        raw: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            if name not in RESERVED_QUERY:
                raw.setdefault(name, []).append(value)
        filters, tag_filters = parse_filters(spec, raw, settings.max_filter_values)
        query = ListQuery(
            filters=filters,
            tag_filters=tag_filters,
            sorts=_sorts(spec, sort_key or [], sort_dir or [], settings.max_sort_keys),
            limit=page_limit(limit, settings),
            marker=_marker(marker),
            reverse=page_reverse,
        )
        return ListParams(
            query, _fields(fields or [], field_names, settings.max_fields), limit is not None
        )

    return dependency


def page_limit(limit: int | None, settings: Settings) -> int:
    """The page size: absent -> the default, 0 ("no limit" in Neutron) -> the
    maximum, anything larger than the maximum -> the maximum (clamped, not
    refused, as Neutron does with ``pagination_max_limit``)."""
    if limit is None:
        return min(settings.pagination_default_limit, settings.pagination_max_limit)
    if limit == 0:
        return settings.pagination_max_limit
    return min(limit, settings.pagination_max_limit)


def _marker(marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        return str(UUID(marker))
    except ValueError:
        raise errors.InvalidQuery(error_message="marker must be a UUID") from None


def _sorts(spec: QuerySpec, keys: list[str], dirs: list[str], cap: int) -> list[tuple[str, bool]]:
    if len(keys) > cap:
        raise errors.InvalidQuery(error_message=f"at most {cap} sort keys")
    if len(dirs) > len(keys):
        raise errors.InvalidQuery(error_message="more sort_dir than sort_key values")
    for key in keys:
        if key not in spec.sorts:
            raise errors.InvalidQuery(error_message=f"'{key}' is not a valid sort key")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise errors.InvalidQuery(error_message="sort_dir must be 'asc' or 'desc'")
    padded = dirs + ["asc"] * (len(keys) - len(dirs))
    return [(k, d == "asc") for k, d in zip(keys, padded, strict=True)]


def _fields(fields: list[str], allowed: frozenset[str], cap: int) -> list[str]:
    names = [n for f in fields for n in f.split(",") if n]
    if len(names) > cap:
        raise errors.InvalidQuery(error_message=f"at most {cap} fields")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise errors.InvalidQuery(error_message=f"'{unknown[0]}' is not a valid field")
    return names


def fields_param(allowed: frozenset[str]) -> Callable[..., Awaitable[list[str]]]:
    async def dependency(
        request: Request, fields: Annotated[list[str] | None, Query()] = None
    ) -> list[str]:
        return _fields(fields or [], allowed, runtime(request).settings.max_fields)

    return dependency


def _write_session(request: Request) -> Iterator[Session]:
    with _transaction(runtime(request).write_sessions, request) as session:
        yield session


# For routes without a permission of their own (Keystone login and tokens).
WriteSession = Annotated[Session, Depends(_write_session, scope="function")]
