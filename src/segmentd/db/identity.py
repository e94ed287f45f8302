"""Identity tables: projects, users, role assignments and tokens.

Secrets never reach these tables in clear: a user row holds an argon2id
hash, a token row is keyed by the SHA-256 of the token.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from segmentd.db.base import Base, UtcDateTime, utcnow

ROLE_NAMES = ("admin", "member", "reader", "service")
DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
IDENTITY_NAME_LEN = 255


def new_identity_id() -> str:
    """Keystone's id format: 32 lowercase hex digits."""
    return uuid.uuid4().hex


class Project(Base):
    __tablename__ = "identity_projects"
    __table_args__ = (
        Index("uq_identity_projects_domain_id_name", "domain_id", "name", unique=True),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_identity_id)
    name: Mapped[str] = mapped_column(String(IDENTITY_NAME_LEN))
    domain_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN_ID)
    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class User(Base):
    __tablename__ = "identity_users"
    __table_args__ = (Index("uq_identity_users_domain_id_name", "domain_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_identity_id)
    name: Mapped[str] = mapped_column(String(IDENTITY_NAME_LEN))
    domain_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN_ID)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    default_project_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("identity_projects.id", ondelete="SET NULL"), default=None
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RoleAssignment(Base):
    __tablename__ = "identity_role_assignments"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'member', 'reader', 'service')", name="role"),
        Index("ix_identity_role_assignments_project_id", "project_id"),
    )

    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("identity_users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("identity_projects.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class Token(Base):
    __tablename__ = "identity_tokens"
    __table_args__ = (
        CheckConstraint("kind IN ('token', 'agent')", name="kind"),
        Index("ix_identity_tokens_user_id_expires_at", "user_id", "expires_at"),
    )

    # SHA-256 of the token, hex.  The token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("identity_users.id", ondelete="CASCADE")
    )
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("identity_projects.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16), default="token")
    methods: Mapped[str] = mapped_column(String(64), default="password")
    audit_id: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


class ConsoleSession(Base):
    """A web console login: the browser holds a random session id in a
    cookie; this row is keyed by its SHA-256 (like tokens, nothing stored
    here authenticates).  Idle timeout: ``last_seen_at``; absolute:
    ``expires_at``; logging out sets ``revoked_at``."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        Index("ix_console_sessions_user_id_expires_at", "user_id", "expires_at"),
        CheckConstraint(
            "(user_id IS NOT NULL AND project_id IS NOT NULL AND keystone IS NULL) OR "
            "(user_id IS NULL AND project_id IS NULL AND keystone IS NOT NULL)",
            name="one_identity",
        ),
    )

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # A login of the built-in identity: its user and project (roles are read
    # afresh on every page) ...
    user_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("identity_users.id", ondelete="CASCADE"), default=None
    )
    project_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("identity_projects.id", ondelete="CASCADE"), default=None
    )
    # ... or of an external Keystone (auth_strategy "keystone"): what Keystone
    # said of the token at login (user, scope, roles, expiry), never the token.
    keystone: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


__all__ = [
    "DEFAULT_DOMAIN_ID",
    "DEFAULT_DOMAIN_NAME",
    "ROLE_NAMES",
    "ConsoleSession",
    "Project",
    "RoleAssignment",
    "Token",
    "User",
    "new_identity_id",
]
