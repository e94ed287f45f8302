"""Shared fixtures: a migrated database per test worker, an app, an API client.

The database is SQLite by default and PostgreSQL when
``SEGMENTD_TEST_DATABASE_URL`` names one (each xdist worker gets its own
database beside it, named ``<SEGMENTD_TEST_DB_PREFIX>_<worker>``, prefix
``segmentd_test`` by default).  Tables are emptied before each test, so every test
starts from nothing and may assert on the whole database state.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, select, text
from sqlalchemy.engine import make_url

from segmentd.api.runtime import Runtime
from segmentd.config import Settings
from segmentd.db import migrate
from segmentd.db.models import AuditEvent, Base
from segmentd.main import build_runtime, create_app
from segmentd.services.segment_ranges import sync_default_ranges
from tests.client import Api

TEST_DB_ENV = "SEGMENTD_TEST_DATABASE_URL"
# Engineers sharing one PostgreSQL server give their runs distinct prefixes.
TEST_DB_PREFIX_ENV = "SEGMENTD_TEST_DB_PREFIX"


def _postgres_database(base_url: str, name: str) -> str:
    """(Re)creates database ``name`` on the server of ``base_url``."""
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    base = os.environ.get(TEST_DB_ENV, "sqlite")
    if base == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'segmentd.db'}"
    else:
        prefix = os.environ.get(TEST_DB_PREFIX_ENV, "segmentd_test")
        # The name is quoted into DDL: accept only a plain identifier.
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,40}", prefix), f"bad {TEST_DB_PREFIX_ENV}"
        url = _postgres_database(base, f"{prefix}_{worker_id}")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


# Tests default to the development ``noauth`` strategy (headers name project
# and roles) and to cheap password hashing; identity and security tests ask
# for ``auth_strategy="token"`` (see ``token_app``).
TEST_DEFAULTS: dict[str, Any] = {
    "auth_strategy": "noauth",
    "password_time_cost": 1,
    "password_memory_kib": 64,
    "password_parallelism": 1,
}


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, environment="test", **{**TEST_DEFAULTS, **overrides})


@pytest.fixture(scope="session")
def runtime(database_url: str) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(database_url))
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def engine(runtime: Runtime) -> Engine:
    bind: Engine = runtime.db.writer
    return bind


@pytest.fixture(scope="session")
def read_engine(runtime: Runtime) -> Engine:
    """The engine GET requests use (on SQLite a pool apart from the writer's)."""
    bind: Engine = runtime.db.reader
    return bind


AUDIT_TABLE = AuditEvent.__tablename__


def reset_database(runtime: Runtime) -> None:
    """Empty every table, then restore the default ranges a fresh start creates."""
    with runtime.db.transaction(write=True) as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != AUDIT_TABLE:
                session.execute(delete(table))
        _empty_audit_trail(session)
        sync_default_ranges(session, runtime.settings.default_ranges())
    runtime.denials.clear()


def _empty_audit_trail(session: Any) -> None:
    """The trail is append-only by trigger: lift the triggers, empty, restore."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        session.execute(delete(AuditEvent))
        session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        return
    triggers = session.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": AUDIT_TABLE},
    ).all()
    for name, _ in triggers:
        session.execute(text(f'DROP TRIGGER "{name}"'))
    session.execute(delete(AuditEvent))
    for _, sql in triggers:
        session.execute(text(sql))


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> None:
    if {"database_url", "api", "token_app"} & set(request.fixturenames):
        reset_database(request.getfixturevalue("runtime"))
    if "token_app" in request.fixturenames:
        request.getfixturevalue("token_runtime").denials.clear()


@pytest.fixture(scope="session")
def app(runtime: Runtime) -> Any:
    return create_app(runtime=runtime)


@pytest.fixture
def api(app: Any) -> Iterator[Api]:
    with Api.for_app(app) as client:
        yield client


@pytest.fixture(scope="session")
def token_runtime(database_url: str) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(database_url, auth_strategy="token"))
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def token_app(token_runtime: Runtime) -> Any:
    """The app as deployed: every /v2.0 request needs an X-Auth-Token."""
    return create_app(runtime=token_runtime)


@pytest.fixture
def make_api(database_url: str) -> Iterator[Callable[..., Api]]:
    """An API over the same database with different settings."""
    made: list[tuple[Api, Runtime]] = []

    def factory(**overrides: Any) -> Api:
        rt = build_runtime(make_settings(database_url, **overrides))
        client = Api.for_app(create_app(runtime=rt))
        made.append((client, rt))
        return client

    yield factory
    for client, rt in made:
        client.close()
        rt.close()


def db_state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every resource table, in a stable order: compare before and after.

    The audit trail is left out: a refused request changes nothing but adds
    its denial event there (tests/api/test_audit.py checks those).
    """
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name != AUDIT_TABLE
        }


@pytest.fixture
def snapshot(engine: Engine) -> Callable[[], dict[str, list[tuple[Any, ...]]]]:
    return lambda: db_state(engine)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
