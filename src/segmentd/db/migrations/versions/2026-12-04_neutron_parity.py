"""Neutron wire parity: external networks, subnet DNS servers, host routes,
service types and IPv6 modes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Additive only: a column on networks (``router:external``), two on subnets
(the IPv6 modes) and three child tables of subnets.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _subnet_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["subnet_id"],
        ["subnets.id"],
        name=op.f(f"fk_{table}_subnet_id_subnets"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.add_column(
        "networks",
        sa.Column("router_external", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("subnets", sa.Column("ipv6_ra_mode", sa.String(16), nullable=True))
    op.add_column("subnets", sa.Column("ipv6_address_mode", sa.String(16), nullable=True))
    op.create_table(
        "subnet_dns_nameservers",
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _subnet_fk("subnet_dns_nameservers"),
        sa.PrimaryKeyConstraint("subnet_id", "address", name=op.f("pk_subnet_dns_nameservers")),
    )
    op.create_table(
        "subnet_routes",
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("nexthop", sa.String(64), nullable=False),
        _subnet_fk("subnet_routes"),
        sa.PrimaryKeyConstraint(
            "subnet_id", "destination", "nexthop", name=op.f("pk_subnet_routes")
        ),
    )
    op.create_table(
        "subnet_service_types",
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("service_type", sa.String(255), nullable=False),
        _subnet_fk("subnet_service_types"),
        sa.PrimaryKeyConstraint("subnet_id", "service_type", name=op.f("pk_subnet_service_types")),
    )


def downgrade() -> None:
    op.drop_table("subnet_service_types")
    op.drop_table("subnet_routes")
    op.drop_table("subnet_dns_nameservers")
    with op.batch_alter_table("subnets", recreate="never") as batch:
        batch.drop_column("ipv6_address_mode")
        batch.drop_column("ipv6_ra_mode")
    with op.batch_alter_table("networks", recreate="never") as batch:
        batch.drop_column("router_external")
