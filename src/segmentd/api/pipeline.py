"""The request pipeline: each route declares its operation once; one runner runs it.

A route's endpoint is decorated with an ``Operation``: the permission it
exercises, what kind of operation it is (which says whether the target is
loaded, whether it writes and what the audit records), the resource, and
whether it may run on the event loop.  ``OperationRoute`` refuses, at
import time, an endpoint without one.  Every request then goes through the
same steps, in order:

1. ``admit`` (``OperationRoute``, before FastAPI reads the body):
   authenticate from the headers and take one rate-limit hit, then read the
   body within its size cap.  Nothing is parsed for a caller refused here.
2. FastAPI parses and validates the path, query and body.
3. The endpoint calls ``call.run(work, render)``, which, in one handler
   thread (or on the loop, for a bounded read or write on SQLite that
   cannot wait there: ``Operation.inline``):
   a. opens the transaction;
   b. for show/update/delete, loads the target through the resource's
      loader, scoped by who may see it (404 otherwise), row-locked when
      writing;
   c. requires the declared permission on it (403: the caller can see it);
   d. calls ``work`` (the service), with the scope of the declared
      permission for operations without a target (lists filter with it,
      creates and actions require it);
   e. records the audit event (before/after snapshots) and the change
      event (the outbox: before/after admin views), and, when the
      resource's creation or deletion changed which segments hosts reach,
      one ``segment_host_mapping`` event per host and direction, in the
      same transaction;
   f. renders the response;
   g. commits, unless the request's deadline passed.

Refused writes are recorded as ``deny`` events in a transaction of their
own (CWE-778); anonymous ones are aggregated per address and route.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from segmentd import errors
from segmentd.api import auth, guards
from segmentd.api.binder import compile_binder
from segmentd.api.runtime import Runtime
from segmentd.api.wire import no_content, request_id_of
from segmentd.authz import Permission, Principal, Scope, credential_allows
from segmentd.db.base import WriteLockBusy, statement_canceller
from segmentd.db.snapshot import Snapshot
from segmentd.services import audit, events, host_events

log = logging.getLogger("segmentd.audit")

T = TypeVar("T")
Kind = Literal["create", "list", "show", "update", "delete", "action", "info", "public"]
RateClass = Literal["read", "write", "report", "anonymous", "login_address"]
# How a caller proves who it is: (request, runtime, rate class) -> principal,
# after one hit on its rate bucket.  Default: the API's headers (``auth``).
Authenticator = Callable[[Request, Runtime, str | None], Awaitable[Principal]]
WRITES: frozenset[Kind] = frozenset({"create", "update", "delete", "action"})
LOADS: frozenset[Kind] = frozenset({"show", "update", "delete"})
AUDITED: frozenset[Kind] = frozenset({"create", "update", "delete"})
INLINE_WRITES = AUDITED
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class Resource(Generic[T]):
    """How a resource is named, found and described.

    ``load(session, scope, id, lock)`` returns the object the scope may see
    (its ``NotFound`` otherwise), row-locked when ``lock``; ``read`` is the
    permission that decides who may see it; ``target`` is what policy rules
    about it may read; ``snapshot`` is its audit view; ``event_view`` its
    view as an admin sees it, for change events (none: no events);
    ``event_project`` the project of its events when its view shows none
    (a segment's: its network's); ``reach`` what it contributes to the
    segment-host mapping, whose changes by its creation or deletion are then
    ``segment_host_mapping`` events (``services.host_events``).
    ``peek(snapshot, scope, id)`` loads it for an ``inline`` show, without
    a Session (``db.snapshot``).
    """

    name: str
    read: Permission
    load: Callable[[Session, Scope, str, bool], T]
    target: Callable[[T], Mapping[str, Any]]
    snapshot: Callable[[Any], dict[str, Any]] = audit.snapshot
    event_view: Callable[[Call, Any], dict[str, Any]] | None = None
    event_project: Callable[[Call, Any], str | None] | None = None
    reach: Callable[[Any], host_events.Reach] | None = None
    peek: Callable[[Snapshot, Scope, str], Any] | None = None


@dataclass(frozen=True)
class Operation:
    """What one route does: declared once, read by the runner and the route-table test.

    ``inline``: a show of one row, loaded by the resource's ``peek``
    (no Session), on the event loop when the database is embedded, sparing
    the thread-pool crossing, a fifth of such a request's CPU; a bounded
    create, update or delete (one resource, or a capped bulk), on the loop
    when the database is embedded and its write lock is free at once
    (``Runtime.writes_inline``; a sixth of a rename's CPU), in a handler
    thread otherwise.  ``rate``: the rate-limit
    bucket (default: write or read by kind; ``None``: not limited).
    ``via``: how the caller is authenticated (default: a token in the
    headers; the web console passes its session cookie check).
    """

    permission: Permission | None
    kind: Kind
    resource: Resource[Any] | None = None
    inline: bool = False
    rate: RateClass | Literal["default"] | None = "default"
    writes: bool = False  # a public operation's transaction writes (logging in)
    via: Authenticator | None = None

    def __post_init__(self) -> None:
        if (self.permission is None) != (self.kind == "public"):
            raise TypeError("an operation declares a permission, or is explicitly public")
        if (self.kind in LOADS or self.kind in AUDITED) and self.resource is None:
            raise TypeError(f"a {self.kind} operation names its resource")
        peekable = self.resource is not None and self.resource.peek is not None
        if self.inline and not (self.kind in INLINE_WRITES or (self.kind == "show" and peekable)):
            raise TypeError("an inline operation is a peekable show, a create, update or delete")

    @classmethod
    def public(cls, rate: RateClass | None = None, write: bool = False) -> Operation:
        """No caller needed (probes, discovery, logging in): ``rate`` counts per address."""
        return cls(None, "public", rate=rate, writes=write)

    @property
    def write(self) -> bool:
        return self.kind in WRITES or self.writes

    @property
    def rate_class(self) -> RateClass | None:
        if self.rate == "default":
            return "write" if self.write else "read"
        return self.rate

    def __call__(self, endpoint: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: attaches this operation to a route's endpoint."""
        endpoint.operation = self  # type: ignore[attr-defined]
        return endpoint


class Call:
    """One request on its way through the pipeline (``run``)."""

    __slots__ = ("operation", "principal", "request", "runtime", "scope", "session", "target")

    def __init__(
        self, request: Request, runtime: Runtime, operation: Operation, principal: Principal | None
    ) -> None:
        self.request = request
        self.runtime = runtime
        self.operation = operation
        self.principal = principal
        self.scope = (
            Scope(principal, operation.permission)
            if principal is not None and operation.permission is not None
            else None
        )
        self.session: Session | None = None
        self.target: Any = None

    @property
    def request_id(self) -> str:
        return request_id_of(self.request.scope)

    @property
    def db(self) -> Session:
        """The transaction's session (inside ``run``)."""
        if self.session is None:
            raise RuntimeError("no transaction outside Call.run")
        return self.session

    @property
    def caller(self) -> Principal:
        if self.principal is None:
            raise RuntimeError("a public operation has no caller")
        return self.principal

    @property
    def allowed(self) -> Scope:
        """The declared permission's scope, for services (lists, creates, actions)."""
        if self.scope is None:
            raise RuntimeError("a public operation has no scope")
        return self.scope

    async def run(
        self,
        work: Callable[[Call], Any],
        render: Callable[[Call, Any], Response] | None = None,
        target_id: str | None = None,
        write: bool | None = None,
    ) -> Response:
        """Run ``work`` in the operation's transaction; ``render`` its result.

        ``target_id`` names the target of show/update/delete operations.
        ``write`` overrides the operation's for a public multi-step flow
        (logging in reads, verifies outside any transaction, then writes).
        """
        op, rt = self.operation, self.runtime
        writing = op.write if write is None else write
        if op.inline and op.kind == "show":
            if target_id is None:
                raise TypeError("a show needs its target's id")
            peek = functools.partial(self._peek, work, render, target_id)
            if rt.reads_inline():
                return peek()
            return await anyio.to_thread.run_sync(peek, limiter=rt.slots.limiter(False))
        if op.inline and writing and rt.writes_inline():
            try:
                return self._steps(work, render, target_id, writing, nowait=True)
            except WriteLockBusy:
                pass  # another process holds SQLite's lock: wait for it in a thread
            except errors.Forbidden as exc:
                await run_in_threadpool(self._record_refusal, exc, writing)
                raise

        def steps() -> Response:
            try:
                return self._steps(work, render, target_id, writing)
            except errors.Forbidden as exc:
                self._record_refusal(exc, writing)
                raise

        return await anyio.to_thread.run_sync(steps, limiter=rt.slots.limiter(writing))

    def _steps(
        self,
        work: Callable[[Call], Any],
        render: Callable[[Call, Any], Response] | None,
        target_id: str | None,
        writing: bool,
        nowait: bool = False,
    ) -> Response:
        """Steps a to g; ``nowait``: on the event loop, so SQLite's write
        lock is taken at once or ``WriteLockBusy`` says nothing was done."""
        try:
            with self._transaction(writing, nowait):
                result = self._execute(work, target_id)
                return (render or _no_content)(self, result)
        finally:
            self.session = None

    def _record_refusal(self, exc: errors.Forbidden, writing: bool) -> None:
        op = self.operation
        if writing and op.kind != "public":
            record_denial(self.request, self.runtime, self.principal, op, exc)

    def _peek(
        self,
        work: Callable[[Call], Any],
        render: Callable[[Call, Any], Response] | None,
        target_id: str,
    ) -> Response:
        """An inline show: steps b, c, d and f, on a snapshot (nothing to commit)."""
        resource, scope = self.operation.resource, self.scope
        assert resource is not None and resource.peek is not None  # noqa: S101 - __post_init__
        assert self.principal is not None and scope is not None  # noqa: S101 - not public
        with self.runtime.db.snapshot() as snapshot:
            self.target = resource.peek(snapshot, Scope(self.principal, resource.read), target_id)
        scope.require(resource.target(self.target))
        return (render or _no_content)(self, work(self))

    def _execute(self, work: Callable[[Call], Any], target_id: str | None) -> Any:
        op, scope = self.operation, self.scope
        resource = op.resource
        before = before_view = None
        project = None
        events_on = self.runtime.settings.events_enabled
        reach = resource.reach if resource is not None and events_on else None
        gone = host_events.Reach()
        hosts_before: host_events.HostPairs = {}
        if op.kind in LOADS:
            assert resource is not None and self.principal is not None  # noqa: S101 - by __post_init__
            if target_id is None:
                raise TypeError(f"a {op.kind} operation needs its target's id")
            # Who may see it decides 404 (the loader); the declared
            # permission then 403 (for most shows it is the same rule).
            seen = Scope(self.principal, resource.read)
            self.target = resource.load(self.db, seen, target_id, op.write)
            if scope is not None:
                scope.require(resource.target(self.target))
            if op.kind in AUDITED:
                before = resource.snapshot(self.target)
                if resource.event_view is not None and events_on:
                    before_view = resource.event_view(self, self.target)
                    if resource.event_project is not None:
                        project = resource.event_project(self, self.target)
            if reach is not None and op.kind == "delete":
                gone = reach(self.target)
                hosts_before = host_events.host_pairs(self.db, gone.hosts)
        result = work(self)
        if scope is not None and not scope.checked:
            # Fail closed: a service that neither filtered nor checked.
            raise RuntimeError(f"{op.permission}: the service did not apply its scope")
        items = result if isinstance(result, list) else [result]
        # Before any event row: the mapping's locks come before the outbox's.
        derived = self._mapping_changes(reach, items, gone, hosts_before)
        if op.kind in AUDITED:
            assert resource is not None  # noqa: S101 - by __post_init__
            event_view = resource.event_view if events_on else None
            # A bulk create returns its resources: one audit entry and one
            # change event each.
            for item in items:
                after = resource.snapshot(item) if op.kind != "delete" else None
                resource_id = target_id if target_id is not None else item.id
                audit.record(
                    self.db,
                    self.caller,
                    self.request_id,
                    op.kind,
                    resource.name,
                    resource_id,
                    permission=str(op.permission),
                    before=before,
                    after=after,
                )
                if event_view is not None:
                    after_view = event_view(self, item) if op.kind != "delete" else None
                    if op.kind == "create" and resource.event_project is not None:
                        project = resource.event_project(self, item)
                    events.record(
                        self.db,
                        resource.name,
                        str(resource_id),
                        op.kind,
                        before_view,
                        after_view,
                        self.request_id,
                        project,
                    )
        events.record_many(self.db, derived, self.request_id)
        return result

    def _mapping_changes(
        self,
        reach: Callable[[Any], host_events.Reach] | None,
        items: list[Any],
        gone: host_events.Reach,
        hosts_before: host_events.HostPairs,
    ) -> list[events.Change]:
        """The segment-host mapping's changes by a create or delete (one event
        per host and direction for the whole request, a bulk included)."""
        if reach is None:
            return []
        if self.operation.kind == "create":
            added = [s for item in items for s in reach(item).segments]
            return host_events.for_segments(self.db, added, ())
        if self.operation.kind == "delete":
            changes = host_events.for_segments(self.db, (), gone.segments)
            if gone.hosts:
                after = host_events.host_pairs(self.db, gone.hosts)
                changes += host_events.for_hosts(self.db, hosts_before, after)
            return changes
        return []

    @contextmanager
    def _transaction(self, write: bool, nowait: bool = False) -> Iterator[Session]:
        """Commits before the response is sent, so a 2xx is only ever
        answered for a committed change.  A request whose deadline passed
        rolls back instead (its client was answered 503), and its running
        statement is cancelled when the deadline passes."""
        deadline = guards.deadline_of(self.request.scope)
        with self.runtime.db.transaction(write, nowait) as session:
            self.session = session
            if deadline is not None:
                deadline.watch(statement_canceller(session.connection()))
            try:
                yield session
            finally:
                if deadline is not None:
                    deadline.watch(None)
            if not guards.may_commit(self.request.scope):
                raise errors.RequestTimeout()


def _no_content(call: Call, result: Any) -> Response:
    return no_content()


def record_denial(
    request: Request,
    rt: Runtime,
    principal: Principal | None,
    op: Operation,
    exc: errors.SegmentdError,
) -> None:
    """A refused mutation, in a transaction of its own (the request's rolled back)."""
    reason = "forbidden" if isinstance(exc, errors.Forbidden) else "not_authenticated"
    resource_id = next((str(v)[:255] for v in request.path_params.values()), None)
    permission = str(op.permission)
    try:
        with rt.db.transaction(write=True) as session:
            audit.record_denial(
                session, principal, request_id_of(request.scope), permission, resource_id, reason
            )
    except Exception:  # the refusal stands even if it cannot be recorded; say so loudly
        rid = request_id_of(request.scope)
        log.error("could not record denied %s request_id=%s", permission, rid, exc_info=True)


def record_anonymous_denial(request: Request, rt: Runtime, op: Operation) -> None:
    """Anonymous refusals cost their sender nothing: the first per address
    and route in a window is recorded, the rest are counted and recorded as
    one event when the window closes (``audit.DenialCounter``)."""
    address = guards.client_address(request)
    key = (address, str(op.permission))
    counter = rt.denials
    record_closed_windows(rt)
    if counter.admit(key):
        record_denial(request, rt, None, op, errors.NotAuthenticated())


def record_closed_windows(rt: Runtime) -> None:
    for (address, permission), count in rt.denials.closed():
        _record_suppressed(rt, address, permission, count)


def _flush_later(rt: Runtime) -> None:
    """Counts of the last window are recorded when it ends, even if no
    denial comes after it."""
    if rt.denials.flush_due():
        loop = asyncio.get_running_loop()

        def flush() -> None:
            loop.run_in_executor(None, record_closed_windows, rt)

        loop.call_later(rt.denials.window_s + 0.1, flush)


def _record_suppressed(rt: Runtime, address: str, permission: str, count: int) -> None:
    try:
        with rt.db.transaction(write=True) as session:
            audit.record_suppressed_denials(
                session, permission, address, count, rt.denials.window_s
            )
    except Exception:
        log.error("could not record %s suppressed denials of %s", count, permission, exc_info=True)


async def admit(request: Request, op: Operation) -> Call:
    """Step 1: the caller (from headers), its rate limit, then the bounded body."""
    rt = auth.runtime_of(request)
    principal = None
    try:
        if op.kind == "public":
            if op.rate_class is not None:
                await auth.limit_address(request, rt, op.rate_class)
        else:
            principal = await (op.via or auth.authenticate)(request, rt, op.rate_class)
            assert op.permission is not None  # noqa: S101 - only public operations lack one
            if not credential_allows(principal, op.permission):
                # An agent token posts reports and nothing else: not even an
                # empty list answers it (warehouse's PERMISSION_AUTH_METHODS).
                raise errors.Forbidden()
            if op.kind == "info":  # no resource, no transaction: decided here
                Scope(principal, op.permission).require()
    except errors.NotAuthenticated:
        if op.write:  # refused mutations are recorded (CWE-778); reads are not
            await run_in_threadpool(record_anonymous_denial, request, rt, op)
            _flush_later(rt)
        raise
    if request.method in BODY_METHODS:
        try:
            await request.body()  # within max_request_body_bytes (guards), else 413
        except ClientDisconnect:
            # The client left, or was too slow (http_limits), before its body
            # was complete: never act on part of a body, and no 500 either.
            raise errors.RequestBodyIncomplete() from None
    return Call(request, rt, op, principal)


class OperationRoute(APIRoute):
    """A route whose endpoint declares its ``Operation``; admits before parsing."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        operation = getattr(endpoint, "operation", None)
        if not isinstance(operation, Operation):
            raise TypeError(f"{path}: the endpoint declares no Operation (fail closed)")
        self.operation = operation
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Any]:
        operation, endpoint = self.operation, self.endpoint
        bind = compile_binder(self, _current_call)
        self.bound = bind is not None
        if bind is None:  # FastAPI's solver parses the arguments
            parse_and_run = super().get_route_handler()

            async def solved(request: Request) -> Response:
                request.state.call = await admit(request, operation)
                response: Response = await parse_and_run(request)
                return response

            return solved

        async def bound(request: Request) -> Response:
            call = request.state.call = await admit(request, operation)
            response: Response = await endpoint(**await bind(request, call))
            return response

        return bound


def routes(prefix: str = "", tag: str = "") -> APIRouter:
    """A router of pipeline routes.  Neutron's clients always send JSON, so
    a body without a Content-Type is parsed as JSON too (tokens travel in
    headers, not cookies: no CSRF to fear from that)."""
    return APIRouter(
        route_class=OperationRoute,
        prefix=prefix,
        tags=[tag] if tag else None,
        strict_content_type=False,
    )


async def _current_call(request: Request) -> Call:
    call: Call = request.state.call
    return call


# The endpoint's handle on its request: ``call: CallOf``.
CallOf = Annotated[Call, Depends(_current_call)]
