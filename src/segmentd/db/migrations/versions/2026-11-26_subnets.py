"""subnets: routed-network subnets, their allocation pools and tags

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subnets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("network_id", sa.String(36), nullable=False),
        sa.Column("segment_id", sa.String(36), nullable=True),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("gateway_ip", sa.String(64), nullable=True),
        sa.Column("enable_dhcp", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("revision_number", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("ip_version IN (4, 6)", name=op.f("ck_subnets_ip_version")),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_subnets_network_id_networks"),
            ondelete="CASCADE",
        ),
        # RESTRICT: a segment with subnets cannot be deleted, even by a write
        # that bypasses the service.
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_subnets_segment_id_segments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subnets")),
    )
    op.create_index(op.f("ix_subnets_network_id"), "subnets", ["network_id"])
    op.create_index(op.f("ix_subnets_segment_id"), "subnets", ["segment_id"])
    op.create_index(op.f("ix_subnets_project_id"), "subnets", ["project_id"])
    op.create_table(
        "subnet_allocation_pools",
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("first_ip", sa.String(64), nullable=False),
        sa.Column("last_ip", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_subnet_allocation_pools_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "first_ip", name=op.f("pk_subnet_allocation_pools")),
    )
    op.create_table(
        "subnet_tags",
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_subnet_tags_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "tag", name=op.f("pk_subnet_tags")),
    )


def downgrade() -> None:
    op.drop_table("subnet_tags")
    op.drop_table("subnet_allocation_pools")
    op.drop_index(op.f("ix_subnets_project_id"), table_name="subnets")
    op.drop_index(op.f("ix_subnets_segment_id"), table_name="subnets")
    op.drop_index(op.f("ix_subnets_network_id"), table_name="subnets")
    op.drop_table("subnets")
