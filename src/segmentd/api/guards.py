"""Request guards (CWE-400): body size, request deadline, rate limits.

``RequestGuards`` is one ASGI middleware doing three things around the app:

- **Body size.**  A ``Content-Length`` above ``max_request_body_bytes`` is
  refused at once; otherwise streamed bytes are counted as the pipeline
  reads them (after authentication and rate limiting), so a chunked body
  cannot slip past either.  Too large: 413, nothing parsed.
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
import time
from collections.abc import Callable

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


def limit_anonymous(request: Request, limits: RateLimits, rate: str = "anonymous") -> None:
    """One hit on the client address's bucket (unauthenticated requests)."""
    _record(request, limits.hit(rate, f"addr:{client_address(request)}"), rate)


def check_login(request: Request, limits: RateLimits, domain: str, user: str, address: str) -> None:
    """429 while this user name has used up its failed logins from this
    address (nothing consumed)."""
    decision = limits.peek("login", login_key(domain, user, address))
    if decision is not None and not decision.allowed:
        _record(request, decision, "login")


def record_login_failure(limits: RateLimits, domain: str, user: str, address: str) -> None:
    limits.hit("login", login_key(domain, user, address))


# Deadline ---------------------------------------------------------------------------


class Deadline:
    """Commit and abandonment race on one lock: exactly one of them wins.

    While a transaction runs it registers a way to cancel its database
    work (``watch``): when the deadline wins, the running statement is
    cancelled too, so the database stops when the client was answered,
    not whenever the statement would have finished.

    A handler that ran on the event loop kept the timer from firing; it
    still commits nothing past the deadline (``expires_at``, monotonic): it
    is answered 503 as it ends.
    """

    def __init__(self, expires_at: float | None = None) -> None:
        self._lock = threading.Lock()
        self._state = "running"
        self._cancel: Callable[[], None] | None = None
        self._expires_at = expires_at

    def claim_commit(self) -> bool:
        with self._lock:
            if self._state == "abandoned":
                return False
            if self._expires_at is not None and time.monotonic() >= self._expires_at:
                return False  # the timer had no chance to run; it may yet answer
            self._state = "committing"
            return True

    def abandon(self) -> tuple[bool, Callable[[], None] | None]:
        """(won, the statement's cancel if one runs); the commit may have won."""
        with self._lock:
            if self._state == "committing":
                return False, None
            self._state = "abandoned"
            return True, self._cancel

    def watch(self, cancel: Callable[[], None] | None) -> None:
        """``cancel`` stops the statement running now; None once the
        transaction is over (its connection may serve another request)."""
        with self._lock:
            self._cancel = cancel

    @property
    def abandoned(self) -> bool:
        return self._state == "abandoned"


def deadline_of(scope: Scope) -> Deadline | None:
    deadline: Deadline | None = scope.get("state", {}).get(STATE_DEADLINE)
    return deadline


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
        if self._declared_too_large(scope):
            too_large = errors.RequestBodyTooLarge(maximum=self.max_body)
            await self._answer(scope, receive, send, too_large)
            return
        # The body is read later, by the pipeline, once the caller is known;
        # bytes are counted as they arrive, so a chunked body cannot slip past.
        received = 0

        async def replay(_receive: Receive = receive) -> Message:
            nonlocal received
            message = await _receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise errors.RequestBodyTooLarge(maximum=self.max_body)
            return message

        deadline = Deadline(time.monotonic() + self.timeout if self.timeout else None)
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
            if started:
                return
            won, cancel = deadline.abandon()
            if won:
                log.warning(
                    "request deadline passed request_id=%s path=%s",
                    request_id_of(scope),
                    scope.get("path", ""),
                )
                answer = self._answer(scope, receive, send, errors.RequestTimeout())
                answering.append(asyncio.ensure_future(answer))
                if cancel is not None:  # cancelling may wait on the network: not on the loop
                    answering.append(asyncio.ensure_future(asyncio.to_thread(_cancel, cancel)))

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

    def _declared_too_large(self, scope: Scope) -> bool:
        """A ``Content-Length`` above the cap (or not a number): refused at once."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value) > self.max_body
                except ValueError:
                    return True
        return False

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, exc: errors.SegmentdError
    ) -> None:
        response = await faults.on_domain_error(Request(scope), exc)
        await response(scope, receive, send)


def _cancel(cancel: Callable[[], None]) -> None:
    try:
        cancel()
    except Exception:  # the statement may have ended meanwhile; nothing to stop
        log.debug("cancelling an abandoned statement failed", exc_info=True)


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
