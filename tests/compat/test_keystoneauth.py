"""keystoneauth1 (what openstacksdk and the CLI use) logs in and finds the network endpoint."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from segmentd.main import build_runtime, create_app
from tests.conftest import make_settings
from tests.identity_support import Identity

keystoneauth1 = pytest.importorskip("keystoneauth1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live(database_url: str) -> Iterator[tuple[str, Any]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    runtime = build_runtime(make_settings(database_url, auth_strategy="token", public_url=base))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime=runtime), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield base, runtime
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()


def test_keystoneauth_password_login(live: tuple[str, Any]) -> None:
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    base, runtime = live
    ident = Identity(runtime)
    project = ident.project("demo")
    ident.user("alice", "s3cret-pass", project, "member")
    auth = v3.Password(
        auth_url=f"{base}/identity/v3",
        username="alice",
        password="s3cret-pass",  # noqa: S106
        user_domain_name="Default",
        project_name="demo",
        project_domain_name="Default",
    )
    sess = session.Session(auth=auth)
    assert sess.get_endpoint(service_type="network", interface="public") == base
    assert sess.get_project_id() == project.id
    resp = sess.get("/v2.0/networks", endpoint_filter={"service_type": "network"})
    assert resp.status_code == 200
    assert resp.json() == {"networks": []}
    created = sess.post(
        "/v2.0/networks",
        json={"network": {"name": "from-ksa"}},
        endpoint_filter={"service_type": "network"},
    )
    assert created.status_code == 201
    assert created.json()["network"]["project_id"] == project.id
