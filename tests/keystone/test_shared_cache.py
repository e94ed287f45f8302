"""Processes share validations through Redis (``token_cache_url``): a token is
validated at Keystone once per deployment, not once per worker or machine."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.keystone.cloud import KeystoneCloud
from tests.server import running_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SEGMENTD_TEST_NO_REDIS") == "1",
        reason="SEGMENTD_TEST_NO_REDIS=1: no Redis here",
    ),
]
REDIS_URL = os.environ.get("SEGMENTD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="module")
def two_servers(keystone_cloud: KeystoneCloud) -> Iterator[list[str]]:
    """Two more segmentd processes (as on two machines), one Redis token cache."""
    work = keystone_cloud.workdir
    env = {
        "SEGMENTD_ENVIRONMENT": "test",
        "SEGMENTD_AUTH_STRATEGY": "keystone",
        "SEGMENTD_CONFIG_FILE": str(work / "segmentd.toml"),
        "SEGMENTD_KEYSTONE_AUTHTOKEN__TOKEN_CACHE_URL": REDIS_URL,
        "SEGMENTD_RATELIMIT_KEY_PREFIX": f"segmentd-ks-{os.getpid()}",
    }
    database = f"sqlite:///{work / 'shared-cache.db'}"
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                running_server(database, env=env, log=work / f"shared-cache-{n}.log")
            )
            for n in range(2)
        ]


def _validations(access_log: Path) -> int:
    """Token validations Keystone has answered so far (its access log)."""
    return access_log.read_text().count('"GET /v3/auth/tokens')


def test_a_token_is_validated_once_for_all_processes(
    keystone_cloud: KeystoneCloud, two_servers: list[str]
) -> None:
    access_log = keystone_cloud.workdir / "access.log"
    token = keystone_cloud.token("alice", "alpha")
    before = _validations(access_log)
    for base in two_servers * 3:
        segmentd = dataclasses.replace(keystone_cloud, segmentd=base)
        assert segmentd.get("/v2.0/networks", token).status_code == 200
    assert _validations(access_log) - before == 1
