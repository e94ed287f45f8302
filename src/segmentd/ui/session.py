"""The console's credential: a session cookie, checked on every page.

- The cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over https,
  ``Path=/ui``) holds a random session id; the server keeps its hash
  (``identity.sessions``), never a token.
- A state change (POST) must come from this origin (``Origin`` and
  ``Sec-Fetch-Site`` when the browser sends them) and carry the session's
  CSRF token in its form; the login form, before any session, carries a
  token matching a cookie of its own (double submit).
- The caller is then a ``Principal`` like a token's (credential
  ``console``), rate-limited in the same buckets, authorised by the same
  policy.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from segmentd import errors
from segmentd.api import auth, guards
from segmentd.api.runtime import Runtime
from segmentd.authz import Principal
from segmentd.identity import keystone, sessions
from segmentd.identity.sessions import SessionInfo
from segmentd.ui.web import PREFIX

COOKIE = "segmentd_session"
LOGIN_COOKIE = "segmentd_login"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 64
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Console:
    """What a page knows of its session: who, and the CSRF token of its forms."""

    info: SessionInfo
    csrf: str


def _own_origins(request: Request, rt: Runtime) -> set[str]:
    url = request.url
    own = {f"{url.scheme}://{url.netloc}"}
    if rt.settings.public_url:
        public = urllib.parse.urlsplit(rt.settings.public_url)
        own.add(f"{public.scheme}://{public.netloc}")
    return own


def check_origin(request: Request, rt: Runtime) -> None:
    """A state change from another site is refused, whatever it carries."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise errors.FormRefused()
    origin = request.headers.get("origin")
    if origin is not None and origin not in _own_origins(request, rt):
        raise errors.FormRefused()


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (its body, within the size cap, read once)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        return {}
    body = await request.body()
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise errors.InvalidInput(error_message="the form could not be read") from None
    return dict(pairs)


def _lookup(rt: Runtime, raw: str) -> SessionInfo:
    now = rt.clock()
    idle = rt.settings.ui_session_idle_seconds
    with rt.db.transaction(write=False) as session:
        info = sessions.validate(session, raw, now, idle)
    if sessions.needs_touch(info, now):
        with rt.db.transaction(write=True) as session:
            sessions.touch(session, info.session_hash, now)
    return info


def _lookup_counted(request: Request, rt: Runtime, raw: str) -> SessionInfo:
    try:
        return _lookup(rt, raw)
    except errors.NotAuthenticated:
        guards.limit_anonymous(request, rt.limits)  # guessing session ids is throttled too
        raise


async def authenticate(request: Request, rt: Runtime, rate: str | None) -> Principal:
    """``Operation.via`` of every console page and form."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise errors.SessionExpired()
    writing = request.method in STATE_CHANGING
    if writing:
        check_origin(request, rt)
    info = await run_in_threadpool(_lookup_counted, request, rt, raw)
    principal = principal_of(info, rt)
    await auth.charge(request, rt, principal, rate)
    request.state.console = Console(info, sessions.csrf_token(raw))
    if writing:
        form = await read_form(request)
        if not sessions.csrf_matches(raw, form.get("csrf")):
            raise errors.FormRefused()
        request.state.form = form
    return principal


def principal_of(info: SessionInfo, rt: Runtime) -> Principal:
    """The session's caller, as policy sees it (credential ``console``)."""
    if info.keystone is not None:  # what Keystone said at login: scope and roles
        validated = keystone.ValidatedToken.from_json(info.keystone)
        seen = keystone.principal_of(keystone.KeystoneIdentity(validated), rt.policy)
        return dataclasses.replace(seen, credential="console")
    return Principal(
        subject=info.user_id,
        project_id=info.project_id,
        roles=frozenset(info.roles),
        credential="console",
        policy=rt.policy,
        name=info.user_name,
    )


def console_of(request: Request) -> Console:
    console: Console = request.state.console
    return console


async def _form(request: Request) -> dict[str, str]:
    form: dict[str, str] = request.state.form
    return form


# An endpoint's checked form: ``form: FormOf``.
FormOf = Annotated[dict[str, str], Depends(_form)]


def _secure(request: Request, rt: Runtime) -> bool:
    public = rt.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def set_session(response: Response, request: Request, rt: Runtime, raw: str) -> None:
    response.set_cookie(
        COOKIE,
        raw,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request, rt),
    )
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)


def clear_session(response: Response, request: Request, rt: Runtime) -> None:
    response.delete_cookie(
        COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=_secure(request, rt)
    )


def login_token(request: Request) -> str:
    """The login form's CSRF token: the one in its cookie, or a new one."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    return current if 20 <= len(current) <= 64 else secrets.token_urlsafe(24)


def set_login_token(response: Response, request: Request, rt: Runtime, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request, rt),
    )


def check_login_form(request: Request, rt: Runtime, form: dict[str, str]) -> None:
    """The login form: same origin, and its token matches its cookie."""
    check_origin(request, rt)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    given = form.get("csrf", "")
    if not cookie or not hmac.compare_digest(cookie, given):
        raise errors.FormRefused()
