"""Who may do what: the permission vocabulary, role grants and query scoping.

Permission names are Neutron's policy rule names, so an operator's mental
model (and, later, policy files) carry over unchanged.  Nothing here knows
about HTTP.  Deny by default: a permission not granted to any of a
principal's roles is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, false, or_, true

from segmentd import errors

T = TypeVar("T", bound=tuple[Any, ...])


class Permission(StrEnum):
    CREATE_NETWORK = "create_network"
    CREATE_NETWORK_PROVIDER = "create_network:provider"
    CREATE_NETWORK_SHARED = "create_network:shared"
    GET_NETWORK = "get_network"
    GET_NETWORK_PROVIDER = "get_network:provider"
    UPDATE_NETWORK = "update_network"
    UPDATE_NETWORK_SHARED = "update_network:shared"
    DELETE_NETWORK = "delete_network"
    CREATE_SEGMENT = "create_segment"
    GET_SEGMENT = "get_segment"
    UPDATE_SEGMENT = "update_segment"
    DELETE_SEGMENT = "delete_segment"
    # Agents and the segment-host mapping (issue 4).
    REPORT_AGENT_STATE = "create_agent_report"
    GET_AGENT = "get_agent"
    UPDATE_AGENT = "update_agent"
    DELETE_AGENT = "delete_agent"
    GET_SEGMENT_HOST_MAPPING = "get_segment_host_mapping"


_READ = frozenset({Permission.GET_NETWORK})
_MEMBER = _READ | {
    Permission.CREATE_NETWORK,
    Permission.UPDATE_NETWORK,
    Permission.DELETE_NETWORK,
}

# Neutron's secure-RBAC defaults: segments and provider attributes are admin-only.
ROLE_GRANTS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "member": frozenset(_MEMBER),
    "reader": _READ,
    # Agents (and controllers syncing many hosts) report state; nothing else.
    "service": frozenset({Permission.REPORT_AGENT_STATE}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    credential: str = "token"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def can(principal: Principal, permission: Permission) -> bool:
    return any(permission in ROLE_GRANTS.get(role, ()) for role in principal.roles)


def require(principal: Principal, permission: Permission) -> None:
    if not can(principal, permission):
        raise errors.Forbidden()


def visible(
    principal: Principal, project_column: Any, shared_column: Any | None = None
) -> ColumnElement[bool]:
    """SQL condition selecting the rows ``principal`` may see (NetBox ``restrict``)."""
    if principal.is_admin:
        return true()
    own = project_column == principal.project_id
    return or_(own, shared_column.is_(True)) if shared_column is not None else own


def scope(
    stmt: Select[T], principal: Principal, project_column: Any, shared_column: Any = None
) -> Select[T]:
    return stmt.where(visible(principal, project_column, shared_column))


def admin_only(principal: Principal) -> ColumnElement[bool]:
    """Condition for admin-only resources: everything or nothing."""
    return true() if principal.is_admin else false()


def roles_of(names: Iterable[str]) -> frozenset[str]:
    return frozenset(names)
