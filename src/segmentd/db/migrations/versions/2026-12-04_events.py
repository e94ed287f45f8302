"""events: the change-event outbox

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-04

One row per committed change of a network, segment, subnet, segment range
or agent, written in the change's transaction; delivery workers send them
to the configured sinks and prune them after the retention period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("revision_number", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
        sa.Column("sinks", sa.Text(), nullable=False),
        sa.Column("last_error", sa.String(255), nullable=False),
        sa.CheckConstraint(
            "action IN ('create', 'update', 'delete')", name=op.f("ck_events_action")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'dead')", name=op.f("ck_events_state")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
    )
    op.create_index("ix_events_due", "events", ["state", "next_attempt_at"])
    op.create_index("ix_events_resource", "events", ["resource_type", "resource_id", "seq"])
    op.create_table(
        "event_sink_stats",
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("deliveries", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sink", name=op.f("pk_event_sink_stats")),
    )


def downgrade() -> None:
    op.drop_table("event_sink_stats")
    op.drop_table("events")
