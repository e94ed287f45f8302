"""segments: an index on (network_type, id) for lists filtered by type

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-03

A list filtered by ``network_type`` is paged in id order; with this index
SQLite reads the page in order instead of sorting every match.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_segments_network_type_id", "segments", ["network_type", "id"])


def downgrade() -> None:
    op.drop_index("ix_segments_network_type_id", table_name="segments")
