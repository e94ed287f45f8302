"""console_sessions: server-side sessions of the web console

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-04

The browser keeps a random session id in a cookie; the row is keyed by its
SHA-256, so nothing in the table authenticates (as with identity_tokens).
A row is a login of the built-in identity (user and project) or of an
external Keystone (what Keystone said of the token, never the token).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("project_id", sa.String(64), nullable=True),
        sa.Column("keystone", sa.JSON(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["identity_projects.id"],
            name=op.f("fk_console_sessions_project_id_identity_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["identity_users.id"],
            name=op.f("fk_console_sessions_user_id_identity_users"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "(user_id IS NOT NULL AND project_id IS NOT NULL AND keystone IS NULL) OR "
            "(user_id IS NULL AND project_id IS NULL AND keystone IS NOT NULL)",
            name=op.f("ck_console_sessions_one_identity"),
        ),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(
        "ix_console_sessions_user_id_expires_at", "console_sessions", ["user_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_console_sessions_user_id_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
