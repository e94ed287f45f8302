"""quotas: per-project limits on networks, subnets and segments

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03

Only the limits that differ from the configured defaults are stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quotas",
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("limit", sa.BigInteger(), nullable=False),
        sa.CheckConstraint('"limit" >= -1', name=op.f("ck_quotas_limit")),
        sa.PrimaryKeyConstraint("project_id", "resource", name=op.f("pk_quotas")),
    )


def downgrade() -> None:
    op.drop_table("quotas")
