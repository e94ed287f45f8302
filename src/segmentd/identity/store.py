"""Projects, users and role assignments in the service database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.authz import Scope
from segmentd.db.identity import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    ROLE_NAMES,
    Project,
    RoleAssignment,
    Token,
    User,
)
from segmentd.db.models import Network, NetworkSegmentRange, Subnet
from segmentd.identity.passwords import Passwords


@dataclass(frozen=True, slots=True)
class Ref:
    """A user or project named Keystone's way: by id, or by name in a domain."""

    id: str | None = None
    name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None

    def in_default_domain(self) -> bool:
        if self.domain_id is None and self.domain_name is None:
            return True
        return self.domain_id == DEFAULT_DOMAIN_ID or self.domain_name == DEFAULT_DOMAIN_NAME


def _check_role(role: str) -> None:
    if role not in ROLE_NAMES:
        raise errors.InvalidInput(error_message=f"role must be one of {', '.join(ROLE_NAMES)}")


def find_project(session: Session, ref: Ref) -> Project | None:
    if ref.id is not None:
        return session.get(Project, ref.id)
    if ref.name is None or not ref.in_default_domain():
        return None
    stmt = select(Project).where(Project.domain_id == DEFAULT_DOMAIN_ID, Project.name == ref.name)
    return session.scalars(stmt).first()


def find_user(session: Session, ref: Ref) -> User | None:
    if ref.id is not None:
        return session.get(User, ref.id)
    if ref.name is None or not ref.in_default_domain():
        return None
    stmt = select(User).where(User.domain_id == DEFAULT_DOMAIN_ID, User.name == ref.name)
    return session.scalars(stmt).first()


def lookup_project(session: Session, id_or_name: str) -> Project:
    """For the CLI: a project by id, else by name in the default domain."""
    found = find_project(session, Ref(id=id_or_name)) or find_project(session, Ref(name=id_or_name))
    if found is None:
        raise errors.ProjectNotFound(project=id_or_name)
    return found


def lookup_user(session: Session, id_or_name: str) -> User:
    found = find_user(session, Ref(id=id_or_name)) or find_user(session, Ref(name=id_or_name))
    if found is None:
        raise errors.UserNotFound(user=id_or_name)
    return found


def create_project(session: Session, name: str, description: str = "") -> Project:
    if find_project(session, Ref(name=name)) is not None:
        raise errors.ProjectExists(name=name)
    project = Project(name=name, description=description, domain_id=DEFAULT_DOMAIN_ID)
    session.add(project)
    session.flush()
    return project


def create_user(
    session: Session,
    passwords: Passwords,
    name: str,
    password: str | None,
    default_project: Project | None = None,
) -> User:
    if find_user(session, Ref(name=name)) is not None:
        raise errors.UserExists(name=name)
    user = User(
        name=name,
        domain_id=DEFAULT_DOMAIN_ID,
        password_hash=passwords.hash(password) if password else None,
        default_project_id=default_project.id if default_project else None,
    )
    session.add(user)
    session.flush()
    return user


def set_password_hash(session: Session, user_id: str, password_hash: str) -> None:
    """Hashes are computed before the transaction: hashing is slow and memory-hard."""
    session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


def reset_password(
    session: Session, passwords: Passwords, user: User, password: str, now: dt.datetime
) -> int:
    """A new password, and the user's live tokens revoked (as Keystone does); how many."""
    set_password_hash(session, user.id, passwords.hash(password))
    result = session.execute(
        update(Token)
        .where(Token.user_id == user.id, Token.revoked_at.is_(None), Token.expires_at > now)
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# Listing and deletion (the admin CLI and the read-only Keystone routes) ------


def list_projects(
    session: Session,
    name: str | None = None,
    domain_id: str | None = None,
    limit: int | None = None,
    *conditions: Any,
) -> list[Project]:
    stmt = select(Project).where(*conditions).order_by(Project.name, Project.id)
    if name is not None:
        stmt = stmt.where(Project.name == name)
    if domain_id is not None:
        stmt = stmt.where(Project.domain_id == domain_id)
    return list(session.scalars(stmt.limit(limit)))


def list_users(
    session: Session,
    name: str | None = None,
    domain_id: str | None = None,
    limit: int | None = None,
) -> list[User]:
    stmt = select(User).order_by(User.name, User.id)
    if name is not None:
        stmt = stmt.where(User.name == name)
    if domain_id is not None:
        stmt = stmt.where(User.domain_id == domain_id)
    return list(session.scalars(stmt.limit(limit)))


@dataclass(frozen=True, slots=True)
class Assignment:
    role: str
    user_id: str
    user_name: str
    project_id: str
    project_name: str


def list_assignments(
    session: Session,
    user_id: str | None = None,
    project_id: str | None = None,
    role: str | None = None,
    limit: int | None = None,
) -> list[Assignment]:
    stmt = (
        select(RoleAssignment.role, User.id, User.name, Project.id, Project.name)
        .join(User, User.id == RoleAssignment.user_id)
        .join(Project, Project.id == RoleAssignment.project_id)
        .order_by(User.name, Project.name, RoleAssignment.role)
    )
    if user_id is not None:
        stmt = stmt.where(RoleAssignment.user_id == user_id)
    if project_id is not None:
        stmt = stmt.where(RoleAssignment.project_id == project_id)
    if role is not None:
        stmt = stmt.where(RoleAssignment.role == role)
    return [Assignment(*row) for row in session.execute(stmt.limit(limit))]


def _admin_assignments_besides(session: Session, **where: str) -> int:
    """Admin assignments that remain once those matching ``where`` are gone."""
    stmt = select(func.count()).select_from(RoleAssignment).where(RoleAssignment.role == "admin")
    for column, value in where.items():
        stmt = stmt.where(getattr(RoleAssignment, column) != value)
    return int(session.scalar(stmt) or 0)


def _has_admin(session: Session, **where: str) -> bool:
    stmt = select(RoleAssignment.role).where(RoleAssignment.role == "admin")
    for column, value in where.items():
        stmt = stmt.where(getattr(RoleAssignment, column) == value)
    return session.scalars(stmt.limit(1)).first() is not None


def _owned(session: Session, project_id: str) -> str | None:
    """What the project still owns, e.g. ``2 networks``; ``None`` when nothing."""
    owned = []
    for model, noun in (
        (Network, "networks"),
        (Subnet, "subnets"),
        (NetworkSegmentRange, "network segment ranges"),
    ):
        count = session.scalar(
            select(func.count()).select_from(model).where(model.project_id == project_id)
        )
        if count:
            owned.append(f"{count} {noun}")
    return ", ".join(owned) or None


def delete_project(session: Session, project: Project) -> None:
    """Its role assignments and tokens go with it; refused while it owns resources."""
    what = _owned(session, project.id)
    if what is not None:
        raise errors.ProjectHasResources(project=project.name, what=what)
    if _has_admin(session, project_id=project.id) and not _admin_assignments_besides(
        session, project_id=project.id
    ):
        raise errors.LastAdmin(what=f"Deleting project {project.name}")
    session.delete(project)
    session.flush()


def delete_user(session: Session, user: User) -> None:
    """Its role assignments and tokens go with it; never the last admin."""
    if _has_admin(session, user_id=user.id) and not _admin_assignments_besides(
        session, user_id=user.id
    ):
        raise errors.LastAdmin(what=f"Deleting user {user.name}")
    session.delete(user)
    session.flush()


def add_role(session: Session, user: User, project: Project, role: str) -> bool:
    """Idempotent; True when the assignment is new."""
    _check_role(role)
    key = {"user_id": user.id, "project_id": project.id, "role": role}
    if session.get(RoleAssignment, key) is not None:
        return False
    session.add(RoleAssignment(**key))
    session.flush()
    return True


def remove_role(session: Session, user: User, project: Project, role: str) -> None:
    _check_role(role)
    if role == "admin" and _has_admin(session, user_id=user.id, project_id=project.id):
        others = (
            select(func.count())
            .select_from(RoleAssignment)
            .where(
                RoleAssignment.role == "admin",
                (RoleAssignment.user_id != user.id) | (RoleAssignment.project_id != project.id),
            )
        )
        if not session.scalar(others):
            raise errors.LastAdmin(what=f"Removing admin from {user.name} on {project.name}")
    session.execute(
        delete(RoleAssignment).where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.project_id == project.id,
            RoleAssignment.role == role,
        )
    )


def roles_on(session: Session, user_id: str, project_id: str) -> list[str]:
    stmt = (
        select(RoleAssignment.role)
        .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
        .order_by(RoleAssignment.role)
    )
    return list(session.scalars(stmt))


def get_project(session: Session, scope: Scope, project_id: str, lock: bool = False) -> Project:
    """A project ``scope`` may see (Keystone: an admin any, others their
    token's), or 404.  Decided on the id asked for, before any lookup, so
    the 403 Keystone answers for another project says nothing of whether
    it exists."""
    scope.require({"project_id": project_id})
    project = session.get(Project, project_id)
    if project is None:
        raise errors.ProjectNotFound(project=project_id)
    return project


def projects_seen(
    session: Session, scope: Scope, name: str | None, domain_id: str | None, cap: int
) -> list[Project]:
    """Up to ``cap + 1`` projects ``scope`` sees, by name (one more: "truncated")."""
    return list_projects(session, name, domain_id, cap + 1, scope.where(project=Project.id))
