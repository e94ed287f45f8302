"""The change-event outbox: one row per committed change, written in its transaction.

``seq`` orders events (per resource it is commit order: a change holds its
resource's row lock when its event draws its number).  Delivery state lives
on the row: ``state`` (``pending``, ``delivered``, ``dead``), ``attempts``,
``next_attempt_at`` (also the claim's lease) and ``sinks``, a JSON object
``{sink name: {"state": ..., "attempts": n, "error": ...}}``.  ``before`` and
``after`` hold the admin views as JSON text, serialised once when written.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segmentd.db.base import Base, UtcDateTime

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
SEQ = BigInteger().with_variant(Integer(), "sqlite")
EVENT_STATES = ("pending", "delivered", "dead")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("action IN ('create', 'update', 'delete')", name="action"),
        CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="state"),
        Index("ix_events_due", "state", "next_attempt_at"),
        Index("ix_events_resource", "resource_type", "resource_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    # A random UUID, never looked up: no index (each would cost every write
    # a page in a random place of the index).
    id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[str | None] = mapped_column(String(255), default=None)
    revision_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[str | None] = mapped_column(Text, default=None)
    after: Mapped[str | None] = mapped_column(Text, default=None)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    sinks: Mapped[str] = mapped_column(Text, default="{}")
    last_error: Mapped[str] = mapped_column(String(255), default="")


class EventSinkStats(Base):
    """Per sink, deliveries and failed attempts since the sink was first used
    (counters for ``/metrics``, kept by the delivery workers of every process)."""

    __tablename__ = "event_sink_stats"

    sink: Mapped[str] = mapped_column(String(64), primary_key=True)
    deliveries: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
