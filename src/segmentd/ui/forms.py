"""Console forms (POST): logging in and out, and the everyday changes.

Each change is the API's operation (same permission, same service call, same
audit event), reached with a session and a CSRF token instead of a token
header.  A refused or invalid change shows the API's own message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from segmentd import errors
from segmentd.api import faults, guards
from segmentd.api import identity as identity_routes
from segmentd.api import networks as network_routes
from segmentd.api.pipeline import Call, CallOf, Operation, routes
from segmentd.api.runtime import Runtime
from segmentd.api.segment_ranges import RANGE
from segmentd.api.segments import SEGMENT
from segmentd.api.subnets import SUBNET
from segmentd.authz import Permission
from segmentd.db.identity import DEFAULT_DOMAIN_ID
from segmentd.identity import keystone, sessions, store
from segmentd.services import networks, segment_ranges, segments, subnets
from segmentd.services.allocation import SegmentSpec
from segmentd.ui import session as ui_session
from segmentd.ui.pages import context, page
from segmentd.ui.session import FormOf
from segmentd.ui.web import PREFIX, field, html, optional_int, redirect, safe_next

# Pages, not API resources: left out of the OpenAPI document.
router = routes(PREFIX, "console")
router.include_in_schema = False

# The login page and form: no session yet; the form counts against the same
# per-address login bucket as POST /identity/v3/auth/tokens.
LOGIN_PAGE = Operation.public(rate="anonymous")
LOGIN = Operation.public(rate="login_address", write=True)
Next = Annotated[str | None, Query(max_length=2048)]


def _login_page(
    request: Request, next_path: str, error: str | None = None, status: int = 200, user: str = ""
) -> Response:
    rt = request.app.state.runtime
    token = ui_session.login_token(request)
    values = {
        "me": None,
        "csrf": token,
        "next": next_path,
        "error": error,
        "username": user,
        "keystone": rt.keystone is not None,
    }
    response = html("login.html", values, status)
    ui_session.set_login_token(response, request, rt, token)
    return response


@router.get("/login")
@LOGIN_PAGE
async def login_page(request: Request, next: Next = None) -> Response:
    return _login_page(request, safe_next(next))


@router.post("/login")
@LOGIN
async def login(call: CallOf, request: Request) -> Response:
    rt = call.runtime
    form = await ui_session.read_form(request)
    ui_session.check_login_form(request, rt, form)
    next_path = safe_next(form.get("next"))
    if rt.keystone is not None:
        return await _keystone_login(call, request, form, next_path)
    username, project = field(form, "username"), field(form, "project")
    password = form.get("password", "")
    if not username or not password or len(username) > 255 or len(project) > 255:
        return _login_page(request, next_path, "Give a user name and a password.", 400, username)
    # Named in the default domain, as a client would: the same failed-login
    # counter as the API's logins of that user from this address.
    user_ref = store.Ref(name=username, domain_id=DEFAULT_DOMAIN_ID)
    project_ref = store.Ref(name=project, domain_id=DEFAULT_DOMAIN_ID) if project else None
    try:
        attempt, new_hash = await identity_routes.verify_login(
            call, request, user_ref, project_ref, password[:1024]
        )

        user, project_row = attempt.user, attempt.project
        assert user is not None and project_row is not None  # noqa: S101 - by verify_login

        def start(c: Call) -> tuple[str, sessions.SessionInfo]:
            absolute = rt.settings.ui_session_absolute_seconds
            return sessions.create(c.db, user, project_row, rt.clock(), absolute, new_hash)

        def answer(c: Call, started: tuple[str, sessions.SessionInfo]) -> Response:
            response = redirect(next_path)
            ui_session.set_session(response, request, rt, started[0])
            return response

        return await call.run(start, answer)
    except errors.InvalidCredentials:
        message = "Invalid user name, password or project."
        return _login_page(request, next_path, message, 401, username)


def _validate_keystone(request: Request, rt: Runtime, token: str) -> keystone.ValidatedToken:
    """The token, validated at Keystone as an API request's would be; an
    invalid one counts against the client address, as a bad token does."""
    ask = keystone.TokenRequest(token, None, "GET", PREFIX + "/", rt.clock())
    assert rt.keystone is not None  # noqa: S101 - keystone mode only
    try:
        found = rt.keystone.validate(ask).user
    except errors.NotAuthenticated:
        guards.limit_anonymous(request, rt.limits)
        raise
    if found.access_rules is not None:  # limited to some API calls: not the console's pages
        raise errors.InvalidToken()
    return found


async def _keystone_login(
    call: Call, request: Request, form: dict[str, str], next_path: str
) -> Response:
    """auth_strategy "keystone": log in with a token of that Keystone
    (``openstack token issue``); the session keeps what Keystone said of it."""
    rt = call.runtime
    token = form.get("token", "").strip()
    if not token or len(token) > 8192:
        return _login_page(request, next_path, "Give a Keystone token.", 400)
    try:
        found = await run_in_threadpool(_validate_keystone, request, rt, token)

        def start(c: Call) -> tuple[str, sessions.SessionInfo]:
            absolute = rt.settings.ui_session_absolute_seconds
            return sessions.create_keystone(
                c.db, found.to_json(), found.expires_at, rt.clock(), absolute
            )

        def answer(c: Call, started: tuple[str, sessions.SessionInfo]) -> Response:
            response = redirect(next_path)
            ui_session.set_session(response, request, rt, started[0])
            return response

        return await call.run(start, answer)
    except errors.InvalidToken:
        return _login_page(request, next_path, "Keystone did not accept that token.", 401)


@router.post("/logout")
@page(Permission.REVOKE_TOKEN, "action", rate="write")
async def logout(call: CallOf, request: Request, form: FormOf) -> Response:
    me = ui_session.console_of(request)
    rt = call.runtime

    def end(c: Call) -> None:
        # Revoking one's own login: the rule that lets a token's user revoke it.
        c.allowed.require({"user_id": me.info.user_id, "project_id": me.info.project_id})
        sessions.revoke(c.db, me.info.session_hash, rt.clock())

    def answer(c: Call, _: None) -> Response:
        response = redirect(PREFIX + "/login")
        ui_session.clear_session(response, request, rt)
        return response

    return await call.run(end, answer)


def _failed(call: Call, exc: errors.SegmentdError, back: str) -> Response:
    """A refused change: the API's message, with the way back."""
    status = faults.status_for(exc)
    values = context(call, "", status=status, message=exc.msg, back=back)
    return html("error.html", values, status)


def _checkbox(form: dict[str, str], name: str) -> bool:
    return form.get(name) in ("on", "true", "1")


@router.post("/networks")
@page(Permission.CREATE_NETWORK, "create", network_routes.NETWORK)
async def create_network(call: CallOf, form: FormOf) -> Response:
    rt = call.runtime
    try:
        network_type = field(form, "network_type")
        physnet = field(form, "physical_network") or None
        segmentation_id = optional_int(form, "segmentation_id")
        shared = _checkbox(form, "shared")
        attributes = {"shared"} if shared else set()
        segment_specs = None
        if network_type:
            segment_specs = [SegmentSpec(network_type, physnet, segmentation_id)]
            attributes.add("provider:network_type")
            if physnet:
                attributes.add("provider:physical_network")
            if segmentation_id is not None:
                attributes.add("provider:segmentation_id")
        spec = networks.NetworkSpec(
            name=field(form, "name")[:255],
            description=field(form, "description")[:255],
            shared=shared,
            project_id=field(form, "project_id") or None,
            segments=segment_specs,
            attributes=frozenset(attributes),
        )

        def create(c: Call) -> Any:
            return networks.create(
                c.db,
                c.allowed,
                spec,
                rt.drivers,
                rt.tenant_types,
                rt.settings.allocation_retries,
                rt.quotas,
            )

        return await call.run(create, lambda c, n: redirect(f"{PREFIX}/networks/{n.id}"))
    except errors.SegmentdError as exc:
        values = {
            **context(call, "networks"),
            "form": form,
            "error": exc.msg,
            "types": sorted(rt.drivers),
            "physnets": rt.settings.vlan_physnets(),
        }
        return html("network_new.html", values, faults.status_for(exc))


@router.post("/networks/{network_id}/delete")
@page(Permission.DELETE_NETWORK, "delete", network_routes.NETWORK)
async def delete_network(call: CallOf, network_id: str, form: FormOf) -> Response:
    try:
        return await call.run(
            lambda c: networks.delete(c.db, c.target, None),
            lambda c, _: redirect(f"{PREFIX}/networks"),
            network_id,
        )
    except errors.SegmentdError as exc:
        return _failed(call, exc, f"{PREFIX}/networks/{network_id}")


@router.post("/networks/{network_id}/segments")
@page(Permission.CREATE_SEGMENT, "create", SEGMENT)
async def add_segment(call: CallOf, network_id: str, form: FormOf) -> Response:
    rt = call.runtime
    back = f"{PREFIX}/networks/{network_id}"
    try:
        spec = SegmentSpec(
            field(form, "network_type"),
            field(form, "physical_network") or None,
            optional_int(form, "segmentation_id"),
            field(form, "name")[:255] or None,
            field(form, "description")[:255],
        )

        def create(c: Call) -> Any:
            return segments.create(
                c.db,
                c.allowed,
                network_id,
                spec,
                rt.drivers,
                rt.settings.allocation_retries,
                rt.quotas,
            )

        return await call.run(create, lambda c, s: redirect(f"{PREFIX}/segments/{s.id}"))
    except errors.SegmentdError as exc:
        return _failed(call, exc, back)


@router.post("/segments/{segment_id}/delete")
@page(Permission.DELETE_SEGMENT, "delete", SEGMENT)
async def delete_segment(call: CallOf, segment_id: str, form: FormOf) -> Response:
    try:
        return await call.run(
            lambda c: segments.delete(c.db, c.target, None),
            lambda c, _: redirect(f"{PREFIX}/networks/{c.target.network_id}"),
            segment_id,
        )
    except errors.SegmentdError as exc:
        return _failed(call, exc, f"{PREFIX}/segments/{segment_id}")


@router.post("/segments/{segment_id}/subnets")
@page(Permission.CREATE_SUBNET, "create", SUBNET)
async def create_subnet(call: CallOf, segment_id: str, form: FormOf) -> Response:
    back = f"{PREFIX}/segments/{segment_id}"
    try:
        cidr = field(form, "cidr")
        spec = subnets.SubnetSpec(
            network_id=field(form, "network_id"),
            cidr=cidr,
            ip_version=6 if ":" in cidr else 4,
            name=field(form, "name")[:255],
            segment_id=segment_id,
        )
        return await call.run(
            lambda c: subnets.create(c.db, c.allowed, spec, c.runtime.quotas),
            lambda c, _: redirect(back),
        )
    except errors.SegmentdError as exc:
        return _failed(call, exc, back)


@router.post("/ranges")
@page(Permission.CREATE_NETWORK_SEGMENT_RANGE, "create", RANGE)
async def create_range(call: CallOf, form: FormOf) -> Response:
    back = f"{PREFIX}/ranges"
    physnets = call.runtime.settings.vlan_physnets()
    try:
        minimum, maximum = optional_int(form, "minimum"), optional_int(form, "maximum")
        if minimum is None or maximum is None:
            raise errors.InvalidInput(error_message="a range needs its minimum and maximum")
        project = field(form, "project_id") or None
        spec = segment_ranges.RangeSpec(
            field(form, "network_type"),
            minimum,
            maximum,
            field(form, "physical_network") or None,
            shared=project is None,
            project_id=project,
            name=field(form, "name")[:255],
        )
        return await call.run(
            lambda c: segment_ranges.create(c.db, c.allowed, spec, physnets),
            lambda c, _: redirect(back),
        )
    except errors.SegmentdError as exc:
        return _failed(call, exc, back)


@router.post("/ranges/{range_id}/delete")
@page(Permission.DELETE_NETWORK_SEGMENT_RANGE, "delete", RANGE)
async def delete_range(call: CallOf, range_id: str, form: FormOf) -> Response:
    back = f"{PREFIX}/ranges"
    try:
        return await call.run(
            lambda c: segment_ranges.delete_(c.db, c.target, None),
            lambda c, _: redirect(back),
            range_id,
        )
    except errors.SegmentdError as exc:
        return _failed(call, exc, back)
