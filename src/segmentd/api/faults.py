"""The one place that maps errors to HTTP responses.

Domain errors carry fixed, caller-safe messages.  Anything else is logged in
full under the request id and answered with a generic body: no driver, SQL,
table or file names ever reach a client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentd import errors
from segmentd.api.wire import REQUEST_ID_HEADER, json_response, ratelimit_headers, request_id_of

log = logging.getLogger("segmentd.faults")

STATUS_BY_CATEGORY: tuple[tuple[type[errors.SegmentdError], int], ...] = (
    (errors.BadRequest, 400),
    (errors.NotAuthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PreconditionFailed, 412),
    (errors.PayloadTooLarge, 413),
    (errors.RateLimited, 429),
    (errors.ServiceUnavailable, 503),
)

HTTP_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    409: "HTTPConflict",
    413: "HTTPRequestEntityTooLarge",
    415: "HTTPUnsupportedMediaType",
    500: "HTTPInternalServerError",
    503: "HTTPServiceUnavailable",
}


def request_id(request: Request) -> str:
    return request_id_of(request.scope)


KEYSTONE_PREFIX = "/identity"
KEYSTONE_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def neutron_error(
    request: Request,
    status: int,
    type_name: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """The error body: Neutron's shape, or Keystone's on the Keystone routes;
    under a prefix with an error page of its own (the web console), that page."""
    page = error_page_for(request)
    if page is not None:
        return page(
            request, status, message, {REQUEST_ID_HEADER: request_id(request), **(headers or {})}
        )
    if request.url.path.startswith(KEYSTONE_PREFIX):
        title = KEYSTONE_TITLES.get(status, "Error")
        body: dict[str, Any] = {"error": {"code": status, "message": message, "title": title}}
    else:
        body = {"NeutronError": {"type": type_name, "message": message, "detail": ""}}
    all_headers = {REQUEST_ID_HEADER: request_id(request), **(headers or {})}
    return json_response(body, status, all_headers)


ErrorPage = Callable[[Request, int, str, dict[str, str]], Response]


def error_page_for(request: Request) -> ErrorPage | None:
    """The renderer ``install`` registered for the request's path prefix, if any."""
    pages: dict[str, ErrorPage] = getattr(request.app.state, "error_pages", {})
    path = request.url.path
    for prefix, page in pages.items():
        if path == prefix or path.startswith(prefix + "/"):
            return page
    return None


def _auth_hint(request: Request) -> str:
    """Where to get a token: the external Keystone, or the built-in identity."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None and runtime.settings.auth_strategy == "keystone":
        return f'Keystone uri="{runtime.settings.keystone_authtoken.authenticate_uri()}"'
    served = str(request.base_url)
    base = runtime.settings.public_base(served) if runtime is not None else served.rstrip("/")
    return f'Keystone uri="{base}/identity/v3"'


def status_for(exc: errors.SegmentdError) -> int:
    return next((code for cls, code in STATUS_BY_CATEGORY if isinstance(exc, cls)), 500)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, errors.SegmentdError):  # registered for this type only
        raise exc
    headers = {}
    if isinstance(exc, errors.RateLimited | errors.ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.RateLimited) and exc.limit is not None:
        headers |= ratelimit_headers(exc.limit, 0, exc.retry_after, exc.window or exc.retry_after)
    if isinstance(exc, errors.NotAuthenticated):
        headers["WWW-Authenticate"] = _auth_hint(request)
    # Forbidden uses Neutron's generic policy message, not the class name.
    type_name = "PolicyNotAuthorized" if type(exc) is errors.Forbidden else exc.type_name
    return neutron_error(request, status_for(exc), type_name, exc.msg, headers)


def _describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    loc = [str(p) for p in error.get("loc", ()) if p != "body"]
    if kind == "json_invalid":
        return "Invalid input for operation: request body is not valid JSON."
    if kind == "extra_forbidden" and loc:
        return errors.UnrecognizedAttribute(names=loc[-1]).msg
    if kind == "missing" and not loc:
        return "Resource body required"
    if kind in ("model_attributes_type", "dict_type") and not loc:
        return "Invalid input for operation: the body must be a JSON object (Content-Type: application/json)."
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if message.startswith(("Attribute ", "Cannot update ", "Resource body")):
        return message
    where = ".".join(loc) or "request"
    return errors.InvalidInput(error_message=f"'{where}': {message}").msg


async def on_validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # registered for this type only
        raise exc
    found = exc.errors()
    message = _describe(found[0]) if found else "Invalid input."
    return neutron_error(request, 400, "HTTPBadRequest", message)


async def on_http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for this type only
        raise exc
    code = exc.status_code
    messages = {404: "The resource could not be found.", 405: "Method not allowed."}
    message = messages.get(code, HTTP_TYPES.get(code, "Error"))
    headers = dict(exc.headers or {})
    return neutron_error(request, code, HTTP_TYPES.get(code, "HTTPError"), message, headers)


async def on_integrity_error(request: Request, exc: Exception) -> Response:
    log.info("integrity conflict request_id=%s: %s", request_id(request), exc)
    return neutron_error(request, 409, "Conflict", errors.Conflict().msg)


async def on_data_error(request: Request, exc: Exception) -> Response:
    # The database refused a value (a NUL byte, an out-of-range number) that
    # validation let through: the caller's input, answered 400 without the text.
    log.info("data error request_id=%s: %s", request_id(request), exc)
    message = errors.InvalidInput(error_message="a value is not acceptable").msg
    return neutron_error(request, 400, "InvalidInput", message)


async def on_database_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError)
    ):
        log.warning("database unavailable request_id=%s: %s", request_id(request), exc)
        unavailable = errors.ServiceUnavailable()
        return neutron_error(
            request, 503, "ServiceUnavailable", unavailable.msg, {"Retry-After": "1"}
        )
    return await on_unexpected(request, exc)


def internal_error_body(rid: str) -> dict[str, Any]:
    message = f"Internal server error (request id {rid})"
    return {"NeutronError": {"type": "HTTPInternalServerError", "message": message, "detail": ""}}


async def on_unexpected(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    log.error("unhandled error request_id=%s", rid, exc_info=exc)
    page = error_page_for(request)
    if page is not None:
        return page(
            request, 500, f"Internal server error (request id {rid})", {REQUEST_ID_HEADER: rid}
        )
    return json_response(internal_error_body(rid), 500, {REQUEST_ID_HEADER: rid})


class ErrorBoundary:
    """Last line: anything that escapes the app becomes one logged 500.

    Starlette's own server-error middleware would answer and then re-raise,
    logging every failure twice and with framework noise; this answers once,
    logs once under the request id, and never lets detail reach the client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            rid = request_id_of(scope)
            log.error("unhandled error request_id=%s", rid, exc_info=exc)
            if started:
                raise  # the client already has a status line; drop the connection
            response = json_response(internal_error_body(rid), 500, {REQUEST_ID_HEADER: rid})
            await response(scope, receive, send)


def install(app: FastAPI, error_pages: dict[str, ErrorPage] | None = None) -> None:
    """``error_pages``: path prefix -> renderer of the errors under it (HTML pages)."""
    app.state.error_pages = dict(error_pages or {})
    app.add_exception_handler(errors.SegmentdError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(IntegrityError, on_integrity_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(DBAPIError, on_database_error)
