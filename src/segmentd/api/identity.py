"""/identity/v3: the Keystone v3 subset clients need to log in.

Version discovery, password authentication with project scope, token
validation and revocation.  Errors on these routes use Keystone's body
(``{"error": {"code", "message", "title"}}``, rendered by ``faults``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from segmentd import errors
from segmentd.api import guards
from segmentd.api.auth import runtime_of
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.api.wire import json_response
from segmentd.authz import Permission, effective_roles
from segmentd.db.identity import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Project
from segmentd.identity import store, tokens

router = routes(tag="identity")

SUBJECT_TOKEN = "X-Subject-Token"  # noqa: S105 - a header name, not a secret
KEYSTONE_TIME = "%Y-%m-%dT%H:%M:%S.000000Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
_IDS = uuid.UUID("7f1d9c1e-4d2a-4c55-9a39-5e9a8f0b6a11")

Id = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


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


# Version discovery: public, as Keystone's.
DISCOVERY = Operation.public()
# Logging in: counted per client address; its transactions read, then write.
LOGIN = Operation.public(rate="login_address", write=True)
TOKEN = Resource("token", Permission.VALIDATE_TOKEN, tokens.subject, tokens.target, tokens.snapshot)
PROJECT = Resource(
    "project", Permission.GET_PROJECT, store.get_project, lambda p: {"project_id": p.id}
)


@router.get("/identity")
@router.get("/identity/")
@DISCOVERY
async def identity_versions(request: Request) -> Response:
    return json_response({"versions": {"values": [_version(request)]}}, 300)


@router.get("/identity/v3")
@router.get("/identity/v3/")
@DISCOVERY
async def identity_version(request: Request) -> Response:
    return json_response({"version": _version(request)})


def _id(kind: str, name: str) -> str:
    return uuid.uuid5(_IDS, f"{kind}:{name}").hex


def _domain(domain_id: str) -> dict[str, str]:
    return {
        "id": domain_id,
        "name": DEFAULT_DOMAIN_NAME if domain_id == DEFAULT_DOMAIN_ID else domain_id,
    }


def _catalog(request: Request) -> list[dict[str, Any]]:
    settings = runtime_of(request).settings
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
@LOGIN
async def issue_token(call: CallOf, request: Request, body: AuthBody) -> Response:
    rt = call.runtime
    auth = body.auth
    user = auth.identity.password.user
    if user.id is None and user.name is None:
        raise errors.InvalidCredentials()
    user_ref, project_ref = _ref(user), _ref(auth.scope.project) if auth.scope else None
    attempt, new_hash = await verify_login(call, request, user_ref, project_ref, user.password)

    def issue(c: Call) -> tuple[str, tokens.TokenInfo]:
        ttl = rt.settings.token_ttl_seconds
        return tokens.issue(c.db, attempt.user, attempt.project, rt.clock(), ttl, new_hash=new_hash)  # type: ignore[arg-type]

    def answer(c: Call, issued: tuple[str, tokens.TokenInfo]) -> Response:
        raw, info = issued
        return json_response(_token_body(request, info), 201, {SUBJECT_TOKEN: raw})

    return await call.run(issue, answer)


async def verify_login(
    call: Call,
    request: Request,
    user_ref: store.Ref,
    project_ref: store.Ref | None,
    password: str,
) -> tuple[tokens.LoginAttempt, str | None]:
    """A password login's checks, shared by this API and the web console:
    the login rate limits, the lookup (one read transaction) and the
    password hash (outside any transaction).  Returns the attempt, its user
    and project known, and the rehashed password when one is due."""
    rt = call.runtime
    # Password guessing: failed logins are counted per user name and client
    # address, so nobody can lock the real user out from elsewhere.
    domain = user_ref.domain_id or user_ref.domain_name or ""
    who = user_ref.id or f"name:{user_ref.name}"
    address = guards.client_address(request)
    guards.check_login(request, rt.limits, domain, who, address)
    found: list[tokens.LoginAttempt] = []
    await call.run(
        lambda c: found.append(tokens.find_login(c.db, user_ref, project_ref)), _none, write=False
    )
    try:
        slots = rt.slots.hashing()
        new_hash = await _hashing(slots, tokens.check_password, rt.passwords, found[0], password)
    except errors.InvalidCredentials:
        guards.record_login_failure(rt.limits, domain, who, address)
        raise
    attempt = found[0]
    assert attempt.user is not None and attempt.project is not None  # noqa: S101 - checked
    return attempt, new_hash


def _none(call: Call, result: Any) -> Response:
    return Response(status_code=204)


async def _hashing(slots: CapacityLimiter, check: Any, *args: Any) -> Any:
    """A password check, in a thread, at most ``password_hash_concurrency``
    at a time per process: a login flood queues here instead of taking
    every core."""
    return await anyio.to_thread.run_sync(check, *args, limiter=slots)


AuthToken = Annotated[str | None, Header(alias="X-Auth-Token")]
SubjectToken = Annotated[str | None, Header(alias="X-Subject-Token")]


@router.get("/identity/v3/auth/tokens")
@Operation(Permission.VALIDATE_TOKEN, "show", TOKEN)
async def validate_token(
    call: CallOf, request: Request, x_subject_token: SubjectToken = None
) -> Response:
    raw = x_subject_token or ""
    return await call.run(
        lambda c: c.target,
        lambda c, info: json_response(_token_body(request, info), 200, {SUBJECT_TOKEN: raw}),
        raw,
    )


@router.delete("/identity/v3/auth/tokens", status_code=204)
@Operation(Permission.REVOKE_TOKEN, "delete", TOKEN)
async def revoke_token(call: CallOf, x_subject_token: SubjectToken = None) -> Response:
    raw, rt = x_subject_token or "", call.runtime

    def revoke(c: Call) -> None:
        tokens.revoke(c.db, raw, rt.clock())
        rt.token_cache.discard(tokens.hash_token(raw))

    return await call.run(revoke, None, raw)


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
@Operation(Permission.GET_PROJECT, "show", PROJECT)
async def show_project(call: CallOf, request: Request, project_id: str) -> Response:
    return await call.run(
        lambda c: c.target,
        lambda c, project: json_response({"project": _project_body(request, project)}),
        project_id,
    )


@router.get("/identity/v3/projects")
@Operation(Permission.LIST_PROJECTS, "list")
async def list_projects(
    call: CallOf,
    request: Request,
    name: Annotated[str | None, Query(max_length=255)] = None,
    domain_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    cap = call.runtime.settings.pagination_max_limit

    def answer(c: Call, found: list[Project]) -> Response:
        body: dict[str, Any] = {
            "projects": [_project_body(request, p) for p in found[:cap]],
            "links": {"self": str(request.url), "next": None, "previous": None},
        }
        if len(found) > cap:
            body["truncated"] = True  # Keystone's answer when list_limit cuts a list
        return json_response(body)

    return await call.run(
        lambda c: store.projects_seen(c.db, c.allowed, name, domain_id, cap), answer
    )
