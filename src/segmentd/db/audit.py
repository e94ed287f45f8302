"""The audit trail: one append-only row per mutation or denied attempt.

The table has no foreign keys on purpose: an event outlives the resource it
describes (a delete is recorded, then the row it names is gone).  Migration
0006 installs triggers that refuse UPDATE and DELETE (and, on PostgreSQL,
TRUNCATE), so the application cannot rewrite history even by mistake.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from segmentd.db.base import Base, UtcDateTime


def audit_now() -> dt.datetime:
    # Full precision (unlike ``utcnow``): events of one second keep their order.
    return dt.datetime.now(dt.UTC)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("action IN ('create', 'update', 'delete', 'deny')", name="action"),
        Index("ix_audit_events_resource", "resource_type", "resource_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=audit_now, index=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    project_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    action: Mapped[str] = mapped_column(String(16))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # The policy rule exercised (``update_network``), so a denial says what was tried.
    permission: Mapped[str] = mapped_column(String(128), default="")
    # For denials: the HTTP-independent reason (``forbidden``, ``not_authenticated``).
    detail: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
