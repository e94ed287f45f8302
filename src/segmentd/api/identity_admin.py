"""/identity/v3 read-only administration: what openstackclient's common commands ask.

``openstack user list``, ``user show``, ``role list`` and ``role assignment
list`` answer an admin token as Keystone does (``project list`` is in
``identity``).  Anyone else gets 403 naming the ``segmentd`` command an
operator can run.  Identity is managed with the ``segmentd`` commands only:
the write calls openstackclient makes (user/project create, set, delete,
role add/remove) answer 403 saying which command does it.  The data access
is in ``identity.store``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from segmentd import errors
from segmentd.api.identity import _domain, _id
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.api.wire import json_response
from segmentd.authz import Permission, Scope
from segmentd.db.identity import ROLE_NAMES, User
from segmentd.identity import store

router = routes(tag="identity")

Filter = Annotated[str | None, Query(max_length=255)]


def _admin_only(scope: Scope, action: str, command: str) -> None:
    """Users, roles and assignments have no project: an admin sees them all;
    anyone else is told which ``segmentd`` command an operator can run."""
    if not scope.unrestricted():
        raise errors.IdentityAdminOnly(action=action, command=command)


def _load_user(session: Session, scope: Scope, user_id: str, lock: bool = False) -> User:
    user = store.find_user(session, store.Ref(id=user_id))
    if user is None:
        raise errors.UserNotFound(user=user_id)
    return user


# Keystone's identity:get_user: an admin, or the user itself (decided by the
# pipeline on the loaded user: 403 for another user, as Keystone answers).
USER = Resource("user", Permission.GET_USER, _load_user, lambda u: {"user_id": u.id})


def _href(request: Request, path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/identity/v3/{path}"


def _listing(request: Request, key: str, items: list[Any], cap: int) -> Response:
    body: dict[str, Any] = {
        key: items[:cap],
        "links": {"self": str(request.url), "next": None, "previous": None},
    }
    if len(items) > cap:
        body["truncated"] = True  # Keystone's answer when list_limit cuts a list
    return json_response(body)


def _user_body(request: Request, user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "domain_id": user.domain_id,
        "enabled": user.enabled,
        "default_project_id": user.default_project_id,
        "password_expires_at": None,
        "options": {},
        "links": {"self": _href(request, f"users/{user.id}")},
    }


@router.get("/identity/v3/users")
@Operation(Permission.LIST_USERS, "list")
async def list_users(
    call: CallOf, request: Request, name: Filter = None, domain_id: Filter = None
) -> Response:
    cap = call.runtime.settings.pagination_max_limit

    def find(c: Call) -> list[User]:
        _admin_only(c.allowed, "Listing users", "user list")
        return store.list_users(c.db, name, domain_id, limit=cap + 1)

    return await call.run(
        find,
        lambda c, found: _listing(request, "users", [_user_body(request, u) for u in found], cap),
    )


@router.get("/identity/v3/users/{user_id}")
@Operation(Permission.GET_USER, "show", USER)
async def show_user(call: CallOf, request: Request, user_id: str) -> Response:
    return await call.run(
        lambda c: c.target,
        lambda c, user: json_response({"user": _user_body(request, user)}),
        user_id,
    )


def _role_body(request: Request, name: str) -> dict[str, Any]:
    role_id = _id("role", name)  # the ids tokens carry
    return {
        "id": role_id,
        "name": name,
        "domain_id": None,
        "description": None,
        "options": {},
        "links": {"self": _href(request, f"roles/{role_id}")},
    }


def _role_name(role_id: str) -> str | None:
    return next((r for r in ROLE_NAMES if role_id in (r, _id("role", r))), None)


@router.get("/identity/v3/roles")
@Operation(Permission.LIST_ROLES, "info")
async def list_roles(request: Request, name: Filter = None) -> Response:
    names = [r for r in ROLE_NAMES if name is None or r == name]
    return json_response(
        {
            "roles": [_role_body(request, r) for r in names],
            "links": {"self": str(request.url), "next": None, "previous": None},
        }
    )


@router.get("/identity/v3/roles/{role_id}")
@Operation(Permission.GET_ROLE, "info")
async def show_role(request: Request, role_id: str) -> Response:
    name = _role_name(role_id)
    if name is None:
        raise errors.RoleNotFound(role=role_id)
    return json_response({"role": _role_body(request, name)})


def _assignment(request: Request, a: store.Assignment, names: bool) -> dict[str, Any]:
    role: dict[str, Any] = {"id": _id("role", a.role)}
    user: dict[str, Any] = {"id": a.user_id}
    project: dict[str, Any] = {"id": a.project_id}
    if names:
        role["name"] = a.role
        user |= {"name": a.user_name, "domain": _domain("default")}
        project |= {"name": a.project_name, "domain": _domain("default")}
    path = f"projects/{a.project_id}/users/{a.user_id}/roles/{role['id']}"
    return {
        "role": role,
        "user": user,
        "scope": {"project": project},
        "links": {"assignment": _href(request, path)},
    }


@router.get("/identity/v3/role_assignments")
@Operation(Permission.LIST_ROLE_ASSIGNMENTS, "list")
async def list_role_assignments(
    call: CallOf,
    request: Request,
    user_id: Annotated[str | None, Query(alias="user.id", max_length=64)] = None,
    project_id: Annotated[str | None, Query(alias="scope.project.id", max_length=64)] = None,
    role_id: Annotated[str | None, Query(alias="role.id", max_length=64)] = None,
    group_id: Annotated[str | None, Query(alias="group.id", max_length=64)] = None,
    domain_id: Annotated[str | None, Query(alias="scope.domain.id", max_length=64)] = None,
    system: Annotated[str | None, Query(alias="scope.system", max_length=64)] = None,
    include_names: Filter = None,
) -> Response:
    cap = call.runtime.settings.pagination_max_limit
    role = _role_name(role_id) if role_id is not None else None
    names = include_names is not None and include_names.lower() not in ("0", "false", "no")

    def find(c: Call) -> list[store.Assignment]:
        _admin_only(c.allowed, "Listing role assignments", "role list")
        # Only users hold roles here, and only on projects: group, domain and
        # system filters (and an unknown role) match nothing.
        if (role_id is not None and role is None) or {group_id, domain_id, system} != {None}:
            return []
        return store.list_assignments(c.db, user_id, project_id, role, limit=cap + 1)

    def answer(c: Call, found: list[store.Assignment]) -> Response:
        items = [_assignment(request, a, names) for a in found]
        return _listing(request, "role_assignments", items, cap)

    return await call.run(find, answer)


# Writes: managed with the segmentd commands -----------------------------------

_WRITES = (
    ("/identity/v3/users", ("POST",), "Creating users", "user create"),
    ("/identity/v3/users/{user_id}", ("PATCH",), "Changing users", "user set"),
    ("/identity/v3/users/{user_id}", ("DELETE",), "Deleting users", "user delete"),
    ("/identity/v3/projects", ("POST",), "Creating projects", "project create"),
    ("/identity/v3/projects/{project_id}", ("PATCH",), "Changing projects", "project create"),
    ("/identity/v3/projects/{project_id}", ("DELETE",), "Deleting projects", "project delete"),
    ("/identity/v3/roles", ("POST",), "Creating roles", "role list"),
    (
        "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
        ("PUT",),
        "Granting roles",
        "role add",
    ),
    (
        "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
        ("DELETE",),
        "Revoking roles",
        "role remove",
    ),
)


def _refuse(action: str, command: str) -> Any:
    # A caller is still required (401 without a token), as for every
    # identity call; the answer is then always this 403.
    @Operation(Permission.REACH_IDENTITY_WRITES, "info")
    async def refuse() -> Response:
        raise errors.IdentityNotManagedHere(action=action, command=command)

    return refuse


for _path, _methods, _action, _command in _WRITES:
    router.add_api_route(
        _path,
        _refuse(_action, _command),
        methods=list(_methods),
        include_in_schema=False,
        name=f"refuse {_action.lower()}",
    )
