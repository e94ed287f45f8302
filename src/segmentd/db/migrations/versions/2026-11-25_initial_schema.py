"""initial schema: networks, segments and their tags

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Timestamps are stored timezone-aware; the model's UtcDateTime decorates this.
TIMESTAMP = sa.DateTime(timezone=True)


def _standard_attrs() -> list[sa.Column[object]]:
    return [
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("revision_number", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("mtu", sa.Integer(), nullable=False),
        *_standard_attrs(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_networks")),
    )
    op.create_index(op.f("ix_networks_project_id"), "networks", ["project_id"])
    op.create_table(
        "network_tags",
        sa.Column("network_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_network_tags_network_id_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("network_id", "tag", name=op.f("pk_network_tags")),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("network_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("network_type", sa.String(16), nullable=False),
        sa.Column("physical_network", sa.String(64), nullable=True),
        sa.Column("segmentation_id", sa.BigInteger(), nullable=True),
        sa.Column("segment_index", sa.Integer(), nullable=False),
        *_standard_attrs(),
        sa.CheckConstraint(
            "network_type IN ('flat', 'vlan', 'vxlan', 'geneve', 'gre', 'local')",
            name=op.f("ck_segments_network_type"),
        ),
        sa.CheckConstraint(
            "network_type <> 'vlan' OR segmentation_id BETWEEN 1 AND 4094",
            name=op.f("ck_segments_vlan_id_range"),
        ),
        sa.CheckConstraint(
            "network_type NOT IN ('vxlan', 'geneve') OR segmentation_id BETWEEN 1 AND 16777215",
            name=op.f("ck_segments_vni_range"),
        ),
        sa.CheckConstraint(
            "network_type <> 'gre' OR segmentation_id BETWEEN 1 AND 4294967295",
            name=op.f("ck_segments_gre_id_range"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_segments_network_id_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
    )
    op.create_index(
        "ix_segments_network_id_segment_index", "segments", ["network_id", "segment_index"]
    )
    op.create_index(
        "ix_segments_pool", "segments", ["network_type", "physical_network", "segmentation_id"]
    )
    # The arbiter of uniqueness: NULLs fold to a value so a flat physnet is
    # usable once; local segments carry neither and may repeat.
    op.create_index(
        "uq_segments_type_physnet_id",
        "segments",
        [
            sa.text("network_type"),
            sa.text("coalesce(physical_network, '')"),
            sa.text("coalesce(segmentation_id, 0)"),
        ],
        unique=True,
        sqlite_where=sa.text("network_type <> 'local'"),
        postgresql_where=sa.text("network_type <> 'local'"),
    )
    op.create_table(
        "segment_tags",
        sa.Column("segment_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_tags_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", "tag", name=op.f("pk_segment_tags")),
    )


def downgrade() -> None:
    op.drop_table("segment_tags")
    op.drop_index("uq_segments_type_physnet_id", table_name="segments")
    op.drop_index("ix_segments_pool", table_name="segments")
    op.drop_index("ix_segments_network_id_segment_index", table_name="segments")
    op.drop_table("segments")
    op.drop_table("network_tags")
    op.drop_index(op.f("ix_networks_project_id"), table_name="networks")
    op.drop_table("networks")
