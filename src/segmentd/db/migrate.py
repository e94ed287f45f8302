"""Programmatic Alembic: ``segmentd db upgrade`` and the test fixtures use this.

Alembic (and Mako) cost a serving worker about 12 MB and are only needed to
migrate, so they are imported inside the functions that migrate; a worker
only needs ``HEAD``, the revision its code expects (readiness compares it
with the database's).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from segmentd import errors

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration's revision; tests/test_migrations.py checks it
# against the scripts, so a new migration cannot forget to move it.
HEAD = "0015"


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


def shown_url(database_url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(database_url).render_as_string(hide_password=True)


def sqlite_file(database_url: str) -> Path | None:
    """The file a SQLite URL names (``None``: not SQLite, or in memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.query.get("uri") or url.database.startswith("file:"):
        return None
    return Path(url.database)


def _first_line(exc: SQLAlchemyError) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip()
    return reason.splitlines()[0] if reason else type(exc).__name__


def require_current(database_url: str) -> None:
    """For admin commands: the database exists and is at ``HEAD``.

    Never creates anything: connecting to a missing SQLite file would create
    an empty one, so its existence is checked first.
    """
    shown = shown_url(database_url)
    path = sqlite_file(database_url)
    if path is not None and not path.exists():
        raise errors.DatabaseNotReady(
            reason=f"database {shown} not found ({path.resolve()} does not exist); "
            "set SEGMENTD_DATABASE_URL, or run `segmentd bootstrap` to create it"
        )
    args = {} if path is not None else {"connect_timeout": 5}
    engine = create_engine(database_url, poolclass=NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            found = _revision(conn)
    except SQLAlchemyError as exc:
        raise errors.DatabaseNotReady(
            reason=f"cannot reach database {shown}: {_first_line(exc)}"
        ) from None
    finally:
        engine.dispose()
    if found is None:
        raise errors.DatabaseNotReady(
            reason=f"database {shown} is not migrated; run `segmentd db upgrade`"
        )
    if found != HEAD:
        raise errors.DatabaseNotReady(
            reason=f"database {shown} is at revision {found}, this segmentd needs {HEAD}; "
            "run `segmentd db upgrade`"
        )


def _revision(conn: Connection) -> str | None:
    from sqlalchemy import inspect

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
