"""Projects, users and role assignments in the service database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.authz import Scope
from segmentd.db.identity import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    ROLE_NAMES,
    Project,
    RoleAssignment,
    User,
)
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


def list_projects(
    session: Session, scope: Scope, name: str | None, domain_id: str | None, cap: int
) -> list[Project]:
    """Up to ``cap + 1`` projects ``scope`` sees, by name (one more: "truncated")."""
    stmt = select(Project).where(scope.where(project=Project.id)).order_by(Project.name, Project.id)
    if name is not None:
        stmt = stmt.where(Project.name == name)
    if domain_id is not None:
        stmt = stmt.where(Project.domain_id == domain_id)
    return list(session.scalars(stmt.limit(cap + 1)))
