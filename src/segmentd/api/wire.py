"""Response plumbing shared by every handler: JSON encoding and headers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Openstack-Request-Id"


def request_id_of(scope: Scope) -> str:
    """The id the observability middleware gave this request ("" before it)."""
    return str(scope.get("state", {}).get("request_id", ""))


# Datetimes as Neutron writes them (``%Y-%m-%dT%H:%M:%SZ``): UTC, "Z", whole seconds.
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_OMIT_MICROSECONDS


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_JSON_OPTIONS)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


def ratelimit_headers(limit: int, remaining: int, reset_s: int, window_s: int) -> dict[str, str]:
    """IETF draft ``RateLimit-*`` headers (limit, remaining, delta-seconds to reset)."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset_s),
        "RateLimit-Policy": f"{limit};w={window_s}",
    }


class TrailingSlash:
    """``GET /v2.0/networks/`` is answered as ``/v2.0/networks``, as Neutron
    answers it, instead of a 307 redirect (which some clients do not follow
    with their token).  Only under ``/v2.0/``; ``/v2.0/`` itself is a route."""

    PREFIX = "/v2.0/"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.endswith("/")
            and path.startswith(self.PREFIX)
            and len(path) > len(self.PREFIX)
        ):
            scope = dict(scope)
            scope["path"] = path.rstrip("/")
            raw = scope.get("raw_path")
            if isinstance(raw, bytes):
                scope["raw_path"] = raw.rstrip(b"/")
        await self.app(scope, receive, send)
