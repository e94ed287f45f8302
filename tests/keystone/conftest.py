"""The Keystone tier: a real Keystone and a ``segmentd serve`` that trusts it.

One Keystone per test session (``keystone_cloud``), set up as an operator
would set up a cloud (``cloud.populate``): projects ``alpha`` and ``beta``
with their users, segmentd's service user with the ``service`` role, and
segmentd registered in the catalog as the ``network`` service.  Clients find
segmentd through that catalog; segmentd validates their tokens at the
catalog's internal identity endpoint, which runs through a TCP forwarder the
outage test cuts.

Skipped only when ``SEGMENTD_TEST_NO_KEYSTONE=1`` says so; a Keystone that
cannot be built or started is an error, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_DB_ENV, TEST_DB_PREFIX_ENV, _postgres_database
from tests.keystone.cloud import (
    POLICY,
    TOKEN_CACHE_SECONDS,
    KeystoneCloud,
    populate,
    segmentd_config,
)
from tests.keystone.keystone_server import running_keystone
from tests.server import free_port, running_server
from tests.tcp_proxy import TcpProxy

SKIP_ENV = "SEGMENTD_TEST_NO_KEYSTONE"


def _segmentd_database(workdir: Path) -> str:
    base = os.environ.get(TEST_DB_ENV, "sqlite")
    if base == "sqlite":
        return f"sqlite:///{workdir / 'segmentd.db'}"
    prefix = os.environ.get(TEST_DB_PREFIX_ENV, "segmentd_test")
    return _postgres_database(base, f"{prefix}_keystone")


@pytest.fixture(scope="session")
def keystone_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneCloud]:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the Keystone tier is skipped on purpose")
    workdir = tmp_path_factory.mktemp("keystone")
    keystone_port, segmentd_port = free_port(), free_port()
    proxy = TcpProxy(("127.0.0.1", keystone_port))
    proxy.start()
    base = f"http://127.0.0.1:{segmentd_port}"
    try:
        with running_keystone(workdir, keystone_port, proxy.port) as keystone:
            cloud = KeystoneCloud(keystone, proxy, base, {}, {}, workdir)
            populate(cloud, base)
            (workdir / "policy.yaml").write_text(POLICY)
            config = segmentd_config(cloud, policy_file=workdir / "policy.yaml")
            (workdir / "segmentd.toml").write_text(config)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SEGMENTD_"))},
                "SEGMENTD_ENVIRONMENT": "test",
                "SEGMENTD_AUTH_STRATEGY": "keystone",  # running_server defaults to noauth
                "SEGMENTD_CONFIG_FILE": str(workdir / "segmentd.toml"),
                "SEGMENTD_PUBLIC_URL": base,
                # Variables override the file, section by section, option by option.
                "SEGMENTD_KEYSTONE_AUTHTOKEN__TOKEN_CACHE_TIME": str(TOKEN_CACHE_SECONDS),
                "SEGMENTD_KEYSTONE_AUTHTOKEN__HTTP_REQUEST_MAX_RETRIES": "0",
            }
            database = _segmentd_database(workdir)
            log = workdir / "segmentd.log"
            with running_server(database, env=env, port=segmentd_port, log=log) as url:
                assert url == base
                yield cloud
    finally:
        proxy.stop()
