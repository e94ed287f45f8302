"""``auth_strategy = "keystone"`` without a Keystone: settings, the switched-off
built-in identity, the 401 hint, and a Keystone nobody answers for (503).

The behaviour against a real Keystone is in ``tests/keystone``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select

from segmentd.config import KeystoneAuthtoken, Settings
from segmentd.db.identity import User
from tests.client import Api
from tests.server import free_port

AUTHTOKEN = {
    "auth_url": "http://127.0.0.1:1/v3",
    "username": "segmentd",
    "password": "service-pass",
    "project_name": "service",
}


def test_keystone_without_its_options_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="auth_url, username, password, project_name"):
        Settings(auth_strategy="keystone")
    with pytest.raises(ValidationError, match=r"keystone_authtoken\] password"):
        Settings(auth_strategy="keystone", keystone_authtoken={**AUTHTOKEN, "password": None})
    insecure = {**AUTHTOKEN, "insecure": True}
    with pytest.raises(ValidationError, match="insecure"):
        Settings(environment="production", auth_strategy="keystone", keystone_authtoken=insecure)


def test_keystone_options_from_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "segmentd.toml"
    path.write_text(
        'auth_strategy = "keystone"\n'
        "[keystone_authtoken]\n"
        'www_authenticate_uri = "https://keystone.example/v3"\n'
        'auth_url = "https://keystone.internal/v3"\n'
        'username = "neutron"\n'
        'password = "from-file"\n'
        'project_name = "service"\n'
    )
    monkeypatch.setenv("SEGMENTD_CONFIG_FILE", str(path))
    monkeypatch.setenv("SEGMENTD_KEYSTONE_AUTHTOKEN__PASSWORD", "from-env")
    monkeypatch.setenv("SEGMENTD_KEYSTONE_AUTHTOKEN__SERVICE_TOKEN_ROLES", "service, admin")
    conf = Settings().keystone_authtoken
    assert conf.password is not None and conf.password.get_secret_value() == "from-env"
    assert (conf.username, conf.auth_url) == ("neutron", "https://keystone.internal/v3")
    assert conf.service_token_roles == ["service", "admin"]
    assert conf.authenticate_uri() == "https://keystone.example/v3"
    # Unset, clients are sent to auth_url; keystonemiddleware's cache default.
    defaults = KeystoneAuthtoken(**AUTHTOKEN)
    assert (defaults.authenticate_uri(), defaults.token_cache_time) == (AUTHTOKEN["auth_url"], 300)


PUBLIC_KEYSTONE = "https://keystone.example.net/v3"


@pytest.fixture
def keystone_api(make_api: Callable[..., Api]) -> Iterator[Api]:
    # Nothing listens on the port: Keystone is down from the start.
    conf = {
        **AUTHTOKEN,
        "auth_url": f"http://127.0.0.1:{free_port()}/v3",
        "www_authenticate_uri": PUBLIC_KEYSTONE,
        "http_request_max_retries": 0,
        "http_connect_timeout": 2,
    }
    yield make_api(auth_strategy="keystone", keystone_authtoken=conf)


def test_401_names_keystone_and_the_built_in_identity_is_off(keystone_api: Api) -> None:
    client = keystone_api.client
    resp = client.get("/v2.0/networks")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{PUBLIC_KEYSTONE}"'
    assert client.get("/identity/v3").status_code == 404
    assert client.post("/identity/v3/auth/tokens", json={}).status_code == 404
    # Not a token at all: refused without asking Keystone.
    assert client.get("/v2.0/networks", headers={"X-Auth-Token": "a b"}).status_code == 401


def test_keystone_unreachable_answers_503_not_401(keystone_api: Api, engine: Engine) -> None:
    client = keystone_api.client
    for method, path in (("GET", "/v2.0/networks"), ("POST", "/v2.0/networks")):
        resp = client.request(
            method, path, headers={"X-Auth-Token": "gAAAAABvalid-looking"}, json={"network": {}}
        )
        assert resp.status_code == 503, resp.text
        assert int(resp.headers["Retry-After"]) > 0
        body = resp.json()["NeutronError"]
        assert body["type"] == "IdentityUnavailable"
        assert "127.0.0.1" not in resp.text and "keystoneauth" not in resp.text.lower()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segmentd.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bootstrap_has_nothing_to_do(database_url: str, engine: Engine, tmp_path: Path) -> None:
    env: dict[str, Any] = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")},
        "SEGMENTD_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "SEGMENTD_DATABASE_URL": database_url,
        "SEGMENTD_AUTH_STRATEGY": "keystone",
        "SEGMENTD_BOOTSTRAP_PASSWORD": "would-be-admin",
        **{f"SEGMENTD_KEYSTONE_AUTHTOKEN__{k.upper()}": v for k, v in AUTHTOKEN.items()},
    }
    done = _cli(env, "bootstrap")
    assert done.returncode == 0, done.stderr
    assert "nothing to bootstrap" in done.stdout
    assert "password" not in done.stdout
    refused = _cli(env, "project", "create", "demo")
    assert refused.returncode == 1
    assert "Keystone" in refused.stderr
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == 0
    env.pop("SEGMENTD_KEYSTONE_AUTHTOKEN__PASSWORD")
    missing = _cli(env, "bootstrap")
    assert missing.returncode == 2
    assert "keystone_authtoken] password" in missing.stderr
    assert "Traceback" not in missing.stderr
