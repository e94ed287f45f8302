"""Rendering: Jinja2 templates shipped in the package, and the headers every
console response carries (a strict Content-Security-Policy: no scripts at
all, styles from this origin only; no framing; no referrer)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from segmentd import errors

PREFIX = "/ui"
HERE = Path(__file__).parent
STATIC = HERE / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    # Not "no-referrer": with it browsers send "Origin: null" on form posts,
    # which the origin check must refuse.  Nothing leaks to other sites.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return "-"
    seconds = int(((now or dt.datetime.now(dt.UTC)) - value).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _stamp(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def vlan_grid(cells: list[tuple[int, str, str | None, str]]) -> Markup:
    """A VLAN pool's 4094 cells, built as one string (a template loop of
    4094 iterations costs several times more): used cells are links to
    their network, reserved ones say for whom."""
    out = []
    for _vid, state, network, title in cells:
        if network is not None:
            # The title is the link's accessible name too (it has no text).
            out.append(
                f'<a class="c used" href="{PREFIX}/networks/{escape(network)}" '
                f'title="{escape(title)}"></a>'
            )
        elif state == "reserved":
            out.append(f'<i class="c reserved" title="{escape(title)}"></i>')
        else:
            out.append(f'<i class="c {state}"></i>')
    return Markup("".join(out))  # noqa: S704 - every value above is escaped


ENV.globals["vlan_grid"] = vlan_grid
ENV.filters["age"] = _age
ENV.filters["stamp"] = _stamp
ENV.globals["prefix"] = PREFIX


def secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def html(template: str, context: dict[str, Any], status: int = 200) -> Response:
    body = ENV.get_template(template).render(**context)
    return secure(Response(body, status_code=status, media_type="text/html; charset=utf-8"))


def redirect(path: str) -> Response:
    """303 See Other: after a form, the browser GETs the result (no resubmission)."""
    return secure(RedirectResponse(path, status_code=303))


def safe_next(value: str | None) -> str:
    """A path inside the console to return to after logging in (no open redirect)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        parsed = urllib.parse.urlsplit(value)
        if not parsed.scheme and not parsed.netloc and "\\" not in value:
            return value
    return PREFIX + "/"


def query_string(base: str, **params: Any) -> str:
    """``base`` with the non-empty ``params`` as its query string."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{base}?{urllib.parse.urlencode(kept)}" if kept else base


def error_page(request: Request, status: int, message: str, headers: dict[str, str]) -> Response:
    """The console's errors (registered with ``api.faults``): a page, or the
    login page for a request without a live session."""
    if status == 401 and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(query_string(PREFIX + "/login", next=target))
    kept = {k: v for k, v in headers.items() if k.lower() not in ("www-authenticate",)}
    response = html("error.html", {"status": status, "message": message, "me": None}, status)
    response.headers.update(kept)
    return response


def field(form: dict[str, str], name: str, default: str = "") -> str:
    return form.get(name, default).strip()


def optional_int(form: dict[str, str], name: str) -> int | None:
    value = field(form, name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.InvalidInput(error_message=f"'{name}' must be a whole number") from None
