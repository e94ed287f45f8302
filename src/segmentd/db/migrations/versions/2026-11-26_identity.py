"""identity: projects, users, role assignments and tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_projects",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain_id", sa.String(64), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_projects")),
    )
    op.create_index(
        "uq_identity_projects_domain_id_name",
        "identity_projects",
        ["domain_id", "name"],
        unique=True,
    )
    op.create_table(
        "identity_users",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain_id", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("default_project_id", sa.String(64), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["default_project_id"],
            ["identity_projects.id"],
            name=op.f("fk_identity_users_default_project_id_identity_projects"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_users")),
    )
    op.create_index(
        "uq_identity_users_domain_id_name", "identity_users", ["domain_id", "name"], unique=True
    )
    op.create_table(
        "identity_role_assignments",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'member', 'reader', 'service')",
            name=op.f("ck_identity_role_assignments_role"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["identity_projects.id"],
            name=op.f("fk_identity_role_assignments_project_id_identity_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["identity_users.id"],
            name=op.f("fk_identity_role_assignments_user_id_identity_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "project_id", "role", name=op.f("pk_identity_role_assignments")
        ),
    )
    op.create_index(
        "ix_identity_role_assignments_project_id", "identity_role_assignments", ["project_id"]
    )
    op.create_table(
        "identity_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("methods", sa.String(64), nullable=False),
        sa.Column("audit_id", sa.String(32), nullable=False),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("kind IN ('token', 'agent')", name=op.f("ck_identity_tokens_kind")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["identity_projects.id"],
            name=op.f("fk_identity_tokens_project_id_identity_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["identity_users.id"],
            name=op.f("fk_identity_tokens_user_id_identity_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_identity_tokens")),
    )
    op.create_index(
        "ix_identity_tokens_user_id_expires_at", "identity_tokens", ["user_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_identity_tokens_user_id_expires_at", table_name="identity_tokens")
    op.drop_table("identity_tokens")
    op.drop_index("ix_identity_role_assignments_project_id", table_name="identity_role_assignments")
    op.drop_table("identity_role_assignments")
    op.drop_index("uq_identity_users_domain_id_name", table_name="identity_users")
    op.drop_table("identity_users")
    op.drop_index("uq_identity_projects_domain_id_name", table_name="identity_projects")
    op.drop_table("identity_projects")
