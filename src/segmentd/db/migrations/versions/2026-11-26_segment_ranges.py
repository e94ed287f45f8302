"""network segment ranges: allocatable IDs as a managed resource

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "network_segment_ranges",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("default", sa.Boolean(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("network_type", sa.String(16), nullable=False),
        sa.Column("physical_network", sa.String(64), nullable=True),
        sa.Column("minimum", sa.BigInteger(), nullable=False),
        sa.Column("maximum", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("revision_number", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("minimum <= maximum", name=op.f("ck_network_segment_ranges_bounds")),
        sa.CheckConstraint(
            "network_type IN ('vlan', 'vxlan', 'geneve', 'gre')",
            name=op.f("ck_network_segment_ranges_network_type"),
        ),
        sa.CheckConstraint(
            "shared OR project_id IS NOT NULL", name=op.f("ck_network_segment_ranges_owner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_segment_ranges")),
    )
    op.create_index(
        "ix_network_segment_ranges_pool",
        "network_segment_ranges",
        ["network_type", "physical_network"],
    )
    op.create_index(
        op.f("ix_network_segment_ranges_project_id"), "network_segment_ranges", ["project_id"]
    )
    op.create_table(
        "network_segment_range_tags",
        sa.Column("range_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["range_id"],
            ["network_segment_ranges.id"],
            name=op.f("fk_network_segment_range_tags_range_id_network_segment_ranges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("range_id", "tag", name=op.f("pk_network_segment_range_tags")),
    )


def downgrade() -> None:
    op.drop_table("network_segment_range_tags")
    op.drop_index(op.f("ix_network_segment_ranges_project_id"), table_name="network_segment_ranges")
    op.drop_index("ix_network_segment_ranges_pool", table_name="network_segment_ranges")
    op.drop_table("network_segment_ranges")
