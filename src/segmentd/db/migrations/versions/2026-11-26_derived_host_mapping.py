"""derive the segment-host mapping instead of storing it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

The mapping is now the join of agent_physnets with segments (see
services/host_mapping.py).  The stored pairs go; the physnet index becomes
(physical_network, host) so a physnet's hosts page in host order.
Downgrade recreates the table and fills it from the same join.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_segment_host_mappings_host"), table_name="segment_host_mappings")
    op.drop_table("segment_host_mappings")
    op.drop_index(op.f("ix_agent_physnets_physical_network"), table_name="agent_physnets")
    op.create_index(
        "ix_agent_physnets_physical_network_host", "agent_physnets", ["physical_network", "host"]
    )


def downgrade() -> None:
    op.drop_index("ix_agent_physnets_physical_network_host", table_name="agent_physnets")
    op.create_index(
        op.f("ix_agent_physnets_physical_network"), "agent_physnets", ["physical_network"]
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
    # Every agent type of this release serves the physnet-carrying types.
    op.execute(
        "INSERT INTO segment_host_mappings (segment_id, host) "
        "SELECT DISTINCT s.id, ap.host FROM agent_physnets ap "
        "JOIN segments s ON s.physical_network = ap.physical_network"
    )
