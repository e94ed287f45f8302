"""/identity/v3: the Keystone v3 subset clients need to log in.

Version discovery, password authentication with project scope, token
validation and revocation.  Errors on these routes use Keystone's body
(``{"error": {"code", "message", "title"}}``, rendered by ``faults``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.responses import Response

from segmentd import errors
from segmentd.api import guards
from segmentd.api.deps import WriteSession, principal_of, runtime
from segmentd.api.wire import json_response, no_content
from segmentd.authz import effective_roles
from segmentd.db.identity import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Project
from segmentd.identity import store, tokens

router = APIRouter(tags=["identity"])

SUBJECT_TOKEN = "X-Subject-Token"  # noqa: S105 - a header name, not a secret
KEYSTONE_TIME = "%Y-%m-%dT%H:%M:%S.000000Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
_IDS = uuid.UUID("7f1d9c1e-4d2a-4c55-9a39-5e9a8f0b6a11")

Id = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainRef(_Strict):
    id: Id | None = None
    name: Name | None = None


class UserRef(_Strict):
    id: Id | None = None
    name: Name | None = None
    domain: DomainRef | None = None
    password: Annotated[str, Field(max_length=1024)]


class PasswordMethod(_Strict):
    user: UserRef


class Identity(_Strict):
    methods: Annotated[list[Literal["password"]], Field(min_length=1, max_length=1)]
    password: PasswordMethod


class ProjectRef(_Strict):
    id: Id | None = None
    name: Name | None = None
    domain: DomainRef | None = None


class Scope(_Strict):
    project: ProjectRef


class Auth(_Strict):
    identity: Identity
    scope: Scope | None = None


class AuthBody(_Strict):
    auth: Auth


def _ref(obj: UserRef | ProjectRef) -> store.Ref:
    domain = obj.domain
    return store.Ref(
        id=obj.id,
        name=obj.name,
        domain_id=domain.id if domain else None,
        domain_name=domain.name if domain else None,
    )


def _version(request: Request) -> dict[str, Any]:
    href = f"{str(request.base_url).rstrip('/')}/identity/v3/"
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": href}],
        "media-types": MEDIA_TYPES,
    }


@router.get("/identity")
@router.get("/identity/")
def identity_versions(request: Request) -> Response:
    return json_response({"versions": {"values": [_version(request)]}}, 300)


@router.get("/identity/v3")
@router.get("/identity/v3/")
def identity_version(request: Request) -> Response:
    return json_response({"version": _version(request)})


def _id(kind: str, name: str) -> str:
    return uuid.uuid5(_IDS, f"{kind}:{name}").hex


def _domain(domain_id: str) -> dict[str, str]:
    return {
        "id": domain_id,
        "name": DEFAULT_DOMAIN_NAME if domain_id == DEFAULT_DOMAIN_ID else domain_id,
    }


def _catalog(request: Request) -> list[dict[str, Any]]:
    settings = runtime(request).settings
    base, region = settings.public_base(str(request.base_url)), settings.region_name

    def service(kind: str, name: str, url: str) -> dict[str, Any]:
        endpoints = [
            {
                "id": _id(f"{kind}-endpoint", iface),
                "interface": iface,
                "region": region,
                "region_id": region,
                "url": url,
            }
            for iface in ("public", "internal", "admin")
        ]
        return {"id": _id("service", kind), "type": kind, "name": name, "endpoints": endpoints}

    return [
        service("network", "neutron", base),
        service("identity", "keystone", f"{base}/identity/v3"),
    ]


def _token_body(request: Request, info: tokens.TokenInfo) -> dict[str, Any]:
    roles = sorted(effective_roles(info.roles))
    return {
        "token": {
            "methods": list(info.methods),
            "user": {
                "id": info.user_id,
                "name": info.user_name,
                "domain": _domain(info.user_domain_id),
                "password_expires_at": None,
            },
            "project": {
                "id": info.project_id,
                "name": info.project_name,
                "domain": _domain(info.project_domain_id),
            },
            "roles": [{"id": _id("role", r), "name": r} for r in roles],
            "audit_ids": [info.audit_id],
            "is_domain": False,
            "expires_at": info.expires_at.strftime(KEYSTONE_TIME),
            "issued_at": info.issued_at.strftime(KEYSTONE_TIME),
            "catalog": _catalog(request),
        }
    }


@router.post("/identity/v3/auth/tokens", status_code=201)
def issue_token(request: Request, body: AuthBody, session: WriteSession) -> Response:
    rt = runtime(request)
    auth = body.auth
    user = auth.identity.password.user
    guards.limit_anonymous(request, rt.limits)
    if user.id is None and user.name is None:
        raise errors.InvalidCredentials()
    # Password guessing: failed logins are counted per user name (or id).
    domain = (user.domain.id or user.domain.name or "") if user.domain else ""
    who = user.id or f"name:{user.name}"
    guards.check_login(request, rt.limits, domain, who)
    project = _ref(auth.scope.project) if auth.scope else None
    try:
        raw, info = tokens.login(
            session,
            rt.passwords,
            _ref(user),
            user.password,
            project,
            rt.clock(),
            rt.settings.token_ttl_seconds,
        )
    except errors.InvalidCredentials:
        guards.record_login_failure(rt.limits, domain, who)
        raise
    return json_response(_token_body(request, info), 201, {SUBJECT_TOKEN: raw})


def _caller_and_subject(
    request: Request, session: WriteSession, auth_token: str | None, subject_token: str | None
) -> tuple[tokens.TokenInfo, tokens.TokenInfo]:
    rt = runtime(request)
    caller = tokens.validate(session, auth_token, rt.clock())
    try:
        subject = tokens.validate(session, subject_token, rt.clock())
    except errors.InvalidToken:
        raise errors.TokenNotFound() from None
    principal = principal_of(caller, rt.policy)
    # Keystone's "service_admin_or_token_subject".
    if caller.user_id != subject.user_id and not (principal.is_admin or "service" in caller.roles):
        raise errors.Forbidden()
    return caller, subject


AuthToken = Annotated[str | None, Header(alias="X-Auth-Token")]
SubjectToken = Annotated[str | None, Header(alias="X-Subject-Token")]


@router.get("/identity/v3/auth/tokens")
def validate_token(
    request: Request,
    session: WriteSession,
    x_auth_token: AuthToken = None,
    x_subject_token: SubjectToken = None,
) -> Response:
    _, subject = _caller_and_subject(request, session, x_auth_token, x_subject_token)
    return json_response(_token_body(request, subject), 200, {SUBJECT_TOKEN: x_subject_token or ""})


@router.delete("/identity/v3/auth/tokens", status_code=204)
def revoke_token(
    request: Request,
    session: WriteSession,
    x_auth_token: AuthToken = None,
    x_subject_token: SubjectToken = None,
) -> Response:
    _caller_and_subject(request, session, x_auth_token, x_subject_token)
    rt = runtime(request)
    tokens.revoke(session, x_subject_token or "", rt.clock())
    rt.token_cache.discard(tokens.hash_token(x_subject_token or ""))
    return no_content()


# Project lookup ---------------------------------------------------------------
# openstackclient resolves every ``--project NAME_OR_ID`` option through
# these two calls (GET /projects/{x}, then GET /projects?name=x).  Keystone's
# defaults: admins see every project; anyone else only the project of their
# token (Keystone answers 403 for the rest; so does this, before any lookup).


def _project_body(request: Request, project: Project) -> dict[str, Any]:
    href = f"{str(request.base_url).rstrip('/')}/identity/v3/projects/{project.id}"
    return {
        "id": project.id,
        "name": project.name,
        "domain_id": project.domain_id,
        "description": project.description,
        "enabled": project.enabled,
        "is_domain": False,
        "parent_id": project.domain_id,
        "tags": [],
        "links": {"self": href},
    }


@router.get("/identity/v3/projects/{project_id}")
def show_project(
    request: Request, project_id: str, session: WriteSession, x_auth_token: AuthToken = None
) -> Response:
    rt = runtime(request)
    caller = tokens.validate(session, x_auth_token, rt.clock())
    if caller.project_id != project_id and not principal_of(caller, rt.policy).is_admin:
        raise errors.Forbidden()
    project = session.get(Project, project_id)
    if project is None:
        raise errors.ProjectNotFound(project=project_id)
    return json_response({"project": _project_body(request, project)})


@router.get("/identity/v3/projects")
def list_projects(
    request: Request,
    session: WriteSession,
    x_auth_token: AuthToken = None,
    name: Annotated[str | None, Query(max_length=255)] = None,
    domain_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    rt = runtime(request)
    caller = tokens.validate(session, x_auth_token, rt.clock())
    stmt = select(Project).order_by(Project.name, Project.id)
    if not principal_of(caller, rt.policy).is_admin:
        stmt = stmt.where(Project.id == caller.project_id)
    if name is not None:
        stmt = stmt.where(Project.name == name)
    if domain_id is not None:
        stmt = stmt.where(Project.domain_id == domain_id)
    cap = rt.settings.pagination_max_limit
    found = list(session.scalars(stmt.limit(cap + 1)))
    body: dict[str, Any] = {
        "projects": [_project_body(request, p) for p in found[:cap]],
        "links": {"self": str(request.url), "next": None, "previous": None},
    }
    if len(found) > cap:
        body["truncated"] = True  # Keystone's answer when list_limit cuts a list
    return json_response(body)
