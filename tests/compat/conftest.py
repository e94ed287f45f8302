"""A real ``segmentd serve`` process with token auth, bootstrapped like an operator would.

One server per test session (per xdist worker), on its own database (a temp
SQLite file, or ``<prefix>_compat_<worker>`` beside the PostgreSQL test
database), so the per-test table reset of the other suites never touches the
identity rows these tests log in with.  The server runs on a random port
without ``SEGMENTD_PUBLIC_URL``, as ``segmentd serve --port N`` would: the
clients find the network endpoint through the catalog, which must name the
address served.  The server's page size is tiny, so
every client list that returns more than a handful of items must follow
``*_links`` to see everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_DB_ENV, TEST_DB_PREFIX_ENV, _postgres_database
from tests.server import free_port, running_server

ADMIN_PASSWORD = "compat-admin-pass"  # noqa: S105 - test data
MEMBER_PASSWORD = "compat-member-pass"  # noqa: S105 - test data
PAGE_SIZE = 5

SERVER_ENV = {
    "SEGMENTD_AUTH_STRATEGY": "token",
    "SEGMENTD_ENVIRONMENT": "test",
    "SEGMENTD_PASSWORD_TIME_COST": "1",
    "SEGMENTD_PASSWORD_MEMORY_KIB": "64",
    "SEGMENTD_PASSWORD_PARALLELISM": "1",
    "SEGMENTD_PAGINATION_DEFAULT_LIMIT": str(PAGE_SIZE),
    "SEGMENTD_PAGINATION_MAX_LIMIT": str(PAGE_SIZE),
}


@dataclass(frozen=True)
class Cloud:
    base: str
    auth_url: str
    admin_project_id: str
    member_project_id: str
    workdir: Path

    def connect(self, member: bool = False) -> object:
        import openstack

        with warnings.catch_warnings():
            # openstacksdk 4.x warns about its own InfluxDB option on every
            # connection (PendingDeprecationWarning; the suite errors on warnings).
            warnings.filterwarnings("ignore", "Support for InfluxDB", PendingDeprecationWarning)
            return self._connect(openstack, member)

    def _connect(self, openstack: Any, member: bool) -> object:
        return openstack.connect(
            auth_url=self.auth_url,
            username="bob" if member else "admin",
            password=MEMBER_PASSWORD if member else ADMIN_PASSWORD,
            project_name="demo" if member else "admin",
            user_domain_name="Default",
            project_domain_name="Default",
            region_name="RegionOne",
            # Only these settings: never a clouds.yaml or OS_* of the machine.
            load_yaml_config=False,
            load_envvars=False,
        )


def _compat_database(tmp: Path, worker_id: str) -> str:
    base = os.environ.get(TEST_DB_ENV, "sqlite")
    if base == "sqlite":
        return f"sqlite:///{tmp / 'compat.db'}"
    prefix = os.environ.get(TEST_DB_PREFIX_ENV, "segmentd_test")
    return _postgres_database(base, f"{prefix}_compat_{worker_id}")


def _segmentd(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "segmentd.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Cloud]:
    pytest.importorskip("openstack")
    workdir = tmp_path_factory.mktemp("compat")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SEGMENTD_"))},
        **SERVER_ENV,
        "SEGMENTD_DATABASE_URL": _compat_database(workdir, worker_id),
        # No SEGMENTD_PUBLIC_URL: the catalog must name the random port served.
        "SEGMENTD_CONFIG_FILE": str(workdir / "absent.toml"),
    }
    boot = _segmentd({**env, "SEGMENTD_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD}, "bootstrap")
    assert "admin" in boot
    # Idempotent: a second run changes nothing and prints no password.
    again = _segmentd(env, "bootstrap")
    assert "exists" in again
    assert "password" not in again
    member_project = _segmentd(env, "project", "create", "demo").strip()
    _segmentd(
        env,
        "user",
        "create",
        "bob",
        "--project",
        "demo",
        "--password-stdin",
        stdin=MEMBER_PASSWORD + "\n",
    )
    with running_server(
        env["SEGMENTD_DATABASE_URL"], env=env, port=port, log=workdir / "server.log"
    ) as url:
        assert url == base
        admin = Cloud(base, f"{base}/identity/v3", "", member_project, workdir).connect()
        admin_project = admin.current_project_id  # type: ignore[attr-defined]
        yield Cloud(base, f"{base}/identity/v3", admin_project, member_project, workdir)
