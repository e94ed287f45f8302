"""The ``segmentd`` admin commands, run as an operator runs them: a subprocess.

Each test gets a database of its own (a SQLite file in a temporary directory,
or a fresh PostgreSQL database on the PostgreSQL pass) and a working
directory of its own, so a stray ``./segmentd.db`` would be seen.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from segmentd import __version__
from segmentd.db.identity import Token, User
from segmentd.db.models import Network
from segmentd.identity.passwords import Passwords
from tests.conftest import TEST_DB_ENV, TEST_DB_PREFIX_ENV, _postgres_database
from tests.server import free_port

CHEAP_HASHING = {
    "SEGMENTD_PASSWORD_TIME_COST": "1",
    "SEGMENTD_PASSWORD_MEMORY_KIB": "64",
    "SEGMENTD_PASSWORD_PARALLELISM": "1",
}
Run = Callable[..., subprocess.CompletedProcess[str]]


def segmentd(
    cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")}
    return subprocess.run(
        [sys.executable, "-m", "segmentd.cli", *args],
        cwd=cwd,
        env={**clean, **CHEAP_HASHING, "SEGMENTD_CONFIG_FILE": str(cwd / "absent.toml"), **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr.strip()


@pytest.fixture
def fresh_url(tmp_path: Path, worker_id: str) -> str:
    """An empty database: a SQLite path not yet created, or an empty PostgreSQL database."""
    base = os.environ.get(TEST_DB_ENV, "sqlite")
    if base == "sqlite":
        return f"sqlite:///{tmp_path / 'admin.db'}"
    prefix = os.environ.get(TEST_DB_PREFIX_ENV, "segmentd_test")
    return _postgres_database(base, f"{prefix}_cli_{worker_id}")


@pytest.fixture
def run(tmp_path: Path, fresh_url: str) -> Run:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return segmentd(tmp_path, {"SEGMENTD_DATABASE_URL": fresh_url}, *args, stdin=stdin)

    return run


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_version(tmp_path: Path) -> None:
    done = segmentd(tmp_path, {}, "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"segmentd {__version__}")


def test_missing_sqlite_file_is_named_and_not_created(tmp_path: Path) -> None:
    # Run from a directory without a database, as from the wrong directory.
    for args in (
        ["user", "list"],
        ["project", "create", "demo"],
        ["token", "issue", "--user", "a", "--project", "b"],
    ):
        error = one_line_error(segmentd(tmp_path, {}, *args))
        assert "sqlite:///./segmentd.db not found" in error
        assert str(tmp_path / "segmentd.db") in error
    assert not (tmp_path / "segmentd.db").exists()


def test_unmigrated_database_says_db_upgrade(tmp_path: Path, fresh_url: str, run: Run) -> None:
    if fresh_url.startswith("sqlite"):
        sqlite3.connect(tmp_path / "admin.db").close()  # exists, no tables
    error = one_line_error(run("project", "list"))
    assert "is not migrated; run `segmentd db upgrade`" in error
    assert fresh_url.split("@")[-1] in error
    ok(run("db", "upgrade"))
    assert ok(run("project", "list")) == ""  # migrated, empty


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://segmentd:secret-pw@127.0.0.1:{free_port()}/segmentd"
    error = one_line_error(segmentd(tmp_path, {"SEGMENTD_DATABASE_URL": url}, "user", "list"))
    assert "cannot reach database postgresql+psycopg://segmentd:***@127.0.0.1:" in error
    assert "secret-pw" not in error


def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmentd.cli", "policy", "show"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    with proc.stderr:
        errors = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 128 + signal.SIGPIPE
    assert errors == ""


def _rows(run: Run, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(run(*args, "-f", "json")))
    return rows


@contextmanager
def _session(url: str) -> Iterator[Session]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def test_projects_users_and_roles(run: Run, fresh_url: str) -> None:
    assert "password: " in ok(run("bootstrap"))
    demo = ok(run("project", "create", "demo", "--description", "the demo")).strip()
    alice = ok(
        run(
            "user",
            "create",
            "alice",
            "--project",
            "demo",
            "--password-stdin",
            stdin="alice-pass-1\n",
        )
    ).strip()
    ok(run("user", "create", "agent", "--project", "demo", "--role", "service", "--no-password"))
    ok(run("role", "add", "--user", "alice", "--project", "admin", "--role", "reader"))

    projects = _rows(run, "project", "list")
    assert [(p["name"], p["description"]) for p in projects] == [
        ("admin", "Administrators"),
        ("demo", "the demo"),
    ]
    table = ok(run("project", "list"))
    assert table.splitlines()[1].split("|")[1:3] == [" id" + " " * 31, " name  "]
    assert f"| {demo} | demo " in table

    users = {u["name"]: u for u in _rows(run, "user", "list")}
    assert users["alice"] == {
        "id": alice,
        "name": "alice",
        "default_project": "demo",
        "enabled": True,
        "password": True,
        "roles": ["reader on admin", "member on demo"],
    }
    assert (users["agent"]["password"], users["agent"]["roles"]) == (False, ["service on demo"])

    assigned = _rows(run, "role", "list", "--user", "alice")
    assert [(a["project"], a["role"]) for a in assigned] == [
        ("admin", "reader"),
        ("demo", "member"),
    ]
    on_demo = _rows(run, "role", "list", "--project", "demo", "--role", "member")
    assert [(a["user"], a["user_id"], a["project_id"]) for a in on_demo] == [("alice", alice, demo)]

    ok(run("user", "delete", "alice", "agent"))
    assert [u["name"] for u in _rows(run, "user", "list")] == ["admin"]
    assert [a["user"] for a in _rows(run, "role", "list")] == ["admin"]
    ok(run("project", "delete", demo))
    assert [p["name"] for p in _rows(run, "project", "list")] == ["admin"]
    assert "Could not find user: alice" in one_line_error(run("user", "delete", "alice"))


def test_user_set_password_stdin_revokes_tokens(run: Run, fresh_url: str) -> None:
    ok(run("bootstrap"))
    token = ok(run("token", "issue", "--user", "admin", "--project", "admin", "--kind", "token"))
    assert token.strip()
    said = ok(run("user", "set", "admin", "--password-stdin", stdin="new-admin-pass\n"))
    assert said.strip() == "password of 'admin' changed; 1 live token(s) revoked"
    with _session(fresh_url) as session:
        user = session.scalars(select(User).where(User.name == "admin")).one()
        assert Passwords(1, 64, 1).verify(user.password_hash, "new-admin-pass")
        assert [t.revoked_at is not None for t in session.scalars(select(Token))] == [True]
    assert "empty password" in one_line_error(
        run("user", "set", "admin", "--password-stdin", stdin="\n")
    )


def test_deletes_that_would_strand_the_service_are_refused(run: Run, fresh_url: str) -> None:
    ok(run("bootstrap"))
    ok(run("project", "create", "demo"))
    assert "last admin" in one_line_error(run("user", "delete", "admin"))
    assert "last admin" in one_line_error(run("project", "delete", "admin"))
    refused = one_line_error(
        run("role", "remove", "--user", "admin", "--project", "admin", "--role", "admin")
    )
    assert "last admin" in refused
    demo = _rows(run, "project", "list")[1]["id"]
    with _session(fresh_url) as session, session.begin():
        session.add(Network(project_id=demo, name="n1"))
    assert "Project demo still owns 1 networks" in one_line_error(run("project", "delete", "demo"))
    assert [p["name"] for p in _rows(run, "project", "list")] == ["admin", "demo"]
    # With a second admin, the first may go.
    ok(
        run(
            "user",
            "create",
            "root2",
            "--project",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            stdin="root2-pass\n",
        )
    )
    ok(run("user", "delete", "admin"))
    assert [u["name"] for u in _rows(run, "user", "list")] == ["root2"]


def test_settings_in_force_hide_secrets(tmp_path: Path) -> None:
    (tmp_path / "segmentd.toml").write_text('region_name = "RegionTwo"\nmax_fields = 7\n')
    env = {
        "SEGMENTD_CONFIG_FILE": str(tmp_path / "segmentd.toml"),
        "SEGMENTD_DATABASE_URL": "postgresql+psycopg://segmentd:db-secret@db.example/segmentd",
        "SEGMENTD_METRICS_TOKEN": "metrics-secret-0123456789",
        "SEGMENTD_MAX_FIELDS": "9",  # the environment wins over the file
    }
    done = segmentd(tmp_path, env, "settings", "-f", "json")
    shown = {row["setting"]: row["value"] for row in json.loads(ok(done))}
    assert shown["database_url"] == "postgresql+psycopg://segmentd:***@db.example/segmentd"
    assert shown["metrics_token"] == "(set)"  # noqa: S105 - the placeholder shown
    assert (shown["region_name"], shown["max_fields"], shown["public_url"]) == (
        "RegionTwo",
        9,
        None,
    )
    assert "secret" not in done.stdout
    assert not (tmp_path / "segmentd.db").exists()
