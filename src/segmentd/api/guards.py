"""Request guards (CWE-400): body size, request deadline, rate limits.

``RequestGuards`` is one ASGI middleware doing three things around the app:

- **Body size.**  A ``Content-Length`` above ``max_request_body_bytes`` is
  refused at once; otherwise the body is read (streamed bytes counted, so a
  chunked body cannot slip past) into a buffer of at most that size before
  the app sees it.  Too large: 413, the app never parses a byte.
- **Deadline.**  A timer, set per request; if the app has not started answering
  after ``request_timeout_seconds`` the client gets 503 ``RequestTimeout``.
  The handler's thread cannot be killed, so it runs on (bounded by the
  database statement/busy timeouts) with its output dropped, and the
  request's transaction is rolled back: ``may_commit`` (called by the session
  dependency just before commit) and the deadline race on one lock, so either
  the commit wins and the real answer is sent, or the deadline wins and
  nothing is committed.  A 503 never hides a change.
- **Rate-limit headers.**  ``RateLimit-*`` from the decision the rate-limit
  dependency left in the request state.

The rate-limit helpers below are called by ``deps`` (per principal) and by
the login route (per address, and failed logins per user name).
"""

from __future__ import annotations

import asyncio
import logging
import threading

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentd import errors
from segmentd.api import faults
from segmentd.api.wire import ratelimit_headers, request_id_of
from segmentd.authz import Principal
from segmentd.ratelimit import Decision, RateLimits, login_key

log = logging.getLogger("segmentd.guards")

STATE_DECISION = "ratelimit"
STATE_DEADLINE = "deadline"


# Rate limits ----------------------------------------------------------------------


def _record(request: Request, decision: Decision | None, klass: str) -> None:
    if decision is None:
        return
    if not decision.degraded:
        request.scope.setdefault("state", {})[STATE_DECISION] = decision
    if not decision.allowed:
        log.info("rate limited class=%s request_id=%s", klass, faults.request_id(request))
        raise errors.RateLimited(
            retry_after=decision.retry_after, limit=decision.limit, window=decision.window_s
        )


def client_address(request: Request) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers/--forwarded-allow-ips
    # so this is the real client; X-Forwarded-For is never trusted here.
    return request.client.host if request.client else "unknown"


def limit_principal(request: Request, limits: RateLimits, principal: Principal, klass: str) -> None:
    """One hit on the caller's bucket for this class of request; 429 when empty."""
    decision = limits.hit(klass, f"user:{principal.subject}", principal.roles)
    _record(request, decision, klass)


def limit_anonymous(request: Request, limits: RateLimits) -> None:
    """One hit on the client address's bucket (unauthenticated requests)."""
    _record(request, limits.hit("anonymous", f"addr:{client_address(request)}"), "anonymous")


def check_login(request: Request, limits: RateLimits, domain: str, user: str) -> None:
    """429 while this user name has used up its failed logins (nothing consumed)."""
    decision = limits.peek("login", login_key(domain, user))
    if decision is not None and not decision.allowed:
        _record(request, decision, "login")


def record_login_failure(limits: RateLimits, domain: str, user: str) -> None:
    limits.hit("login", login_key(domain, user))


# Deadline ---------------------------------------------------------------------------


class Deadline:
    """Commit and abandonment race on one lock: exactly one of them wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "running"

    def claim_commit(self) -> bool:
        with self._lock:
            if self._state == "abandoned":
                return False
            self._state = "committing"
            return True

    def abandon(self) -> bool:
        with self._lock:
            if self._state == "committing":
                return False
            self._state = "abandoned"
            return True

    @property
    def abandoned(self) -> bool:
        return self._state == "abandoned"


def may_commit(scope: Scope) -> bool:
    """False when the request's deadline passed: its transaction must roll back."""
    deadline: Deadline | None = scope.get("state", {}).get(STATE_DEADLINE)
    return deadline is None or deadline.claim_commit()


# The middleware -----------------------------------------------------------------------


class RequestGuards:
    def __init__(self, app: ASGIApp, max_body_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.timeout = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except errors.RequestBodyIncomplete as exc:
            # The client left, or took too long (http_limits), before its body
            # was complete: never act on part of a body.  Nobody will read
            # this answer; it names the outcome in the access log.
            await self._answer(scope, receive, send, exc)
            return
        if body is None:
            too_large = errors.RequestBodyTooLarge(maximum=self.max_body)
            await self._answer(scope, receive, send, too_large)
            return
        replayed = False

        async def replay(_receive: Receive = receive) -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await _receive()

        deadline = Deadline()
        scope.setdefault("state", {})[STATE_DEADLINE] = deadline
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if deadline.abandoned:
                return  # the client already has its 503
            if message["type"] == "http.response.start":
                started = True
                _add_ratelimit_headers(scope, message)
            await send(message)

        if not self.timeout:
            await self.app(scope, replay, guarded_send)
            return
        answering: list[asyncio.Task[None]] = []

        def on_deadline() -> None:
            # The handler runs on (its thread cannot be stopped): answer 503
            # now, from a task of our own, and drop whatever it sends later.
            if not started and deadline.abandon():
                log.warning(
                    "request deadline passed request_id=%s path=%s",
                    request_id_of(scope),
                    scope.get("path", ""),
                )
                answer = self._answer(scope, receive, send, errors.RequestTimeout())
                answering.append(asyncio.ensure_future(answer))

        # A timer, not a task per request: the handler runs in this task.
        timer = asyncio.get_running_loop().call_later(self.timeout, on_deadline)
        try:
            await self.app(scope, replay, guarded_send)
        except Exception:
            if not deadline.abandoned:
                raise
            log.info("abandoned request failed after its deadline", exc_info=True)
        finally:
            timer.cancel()
            for task in answering:
                await task

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than allowed.

        Raises ``RequestBodyIncomplete`` when the client is gone before the end.
        """
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        return None
                except ValueError:
                    return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise errors.RequestBodyIncomplete()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, exc: errors.SegmentdError
    ) -> None:
        response = await faults.on_domain_error(Request(scope), exc)
        await response(scope, receive, send)


def _add_ratelimit_headers(scope: Scope, message: Message) -> None:
    decision: Decision | None = scope.get("state", {}).get(STATE_DECISION)
    if decision is None:
        return
    headers = list(message.get("headers", []))
    if any(k.lower() == b"ratelimit-limit" for k, _ in headers):
        return  # a 429 carries its own
    for name, value in ratelimit_headers(
        decision.limit, decision.remaining, decision.reset_s, decision.window_s
    ).items():
        headers.append((name.lower().encode(), value.encode()))
    message["headers"] = headers
