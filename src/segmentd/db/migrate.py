"""Programmatic Alembic: ``segmentd db upgrade`` and the test fixtures use this.

Alembic (and Mako) cost a serving worker about 12 MB and are only needed to
migrate, so they are imported inside the functions that migrate; a worker
only needs ``HEAD``, the revision its code expects (readiness compares it
with the database's).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration's revision; tests/test_migrations.py checks it
# against the scripts, so a new migration cannot forget to move it.
HEAD = "0009"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Fails when the models and the migrations disagree."""
    from alembic import command

    command.check(alembic_config(database_url))


def script_head() -> str:
    """The head revision, read from the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError("no migration head")
    return head
