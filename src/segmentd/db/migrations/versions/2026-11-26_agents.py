"""agents, their physical networks, and the segment-host mapping

Revision ID: 0004
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Host mapping joins reported physnets to segments: without this the
    # planner walks every segment of a type for every reporting agent.
    op.create_index(
        "ix_segments_physical_network", "segments", ["physical_network", "network_type"]
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("agent_type", sa.String(64), nullable=False),
        sa.Column("binary", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("configurations", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("heartbeat_timestamp", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        # Host first: reconciliation and the report lookup both start from the host.
        sa.UniqueConstraint("host", "agent_type", name=op.f("uq_agents_host_agent_type")),
    )
    op.create_table(
        "agent_physnets",
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("physical_network", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("agent_type", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_physnets_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "physical_network", name=op.f("pk_agent_physnets")),
    )
    op.create_index(
        op.f("ix_agent_physnets_physical_network"), "agent_physnets", ["physical_network"]
    )
    op.create_index(
        "ix_agent_physnets_host_physical_network", "agent_physnets", ["host", "physical_network"]
    )
    op.create_table(
        "segment_host_mappings",
        sa.Column("segment_id", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_host_mappings_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", "host", name=op.f("pk_segment_host_mappings")),
    )
    op.create_index(op.f("ix_segment_host_mappings_host"), "segment_host_mappings", ["host"])


def downgrade() -> None:
    op.drop_index(op.f("ix_segment_host_mappings_host"), table_name="segment_host_mappings")
    op.drop_table("segment_host_mappings")
    op.drop_index("ix_agent_physnets_host_physical_network", table_name="agent_physnets")
    op.drop_index(op.f("ix_agent_physnets_physical_network"), table_name="agent_physnets")
    op.drop_table("agent_physnets")
    op.drop_table("agents")
    op.drop_index("ix_segments_physical_network", table_name="segments")
