"""``segmentd serve`` start-up: the listening line, a busy port, a public_url elsewhere."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

from segmentd.listen import public_url_mismatch
from tests.server import free_port

pytestmark = pytest.mark.slow


@contextmanager
def serve(
    tmp_path: Path, database_url: str, port: int, **env: str
) -> Iterator[subprocess.Popen[str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmentd.cli", "serve", "--port", str(port), "--no-upgrade"],
        cwd=tmp_path,
        env={
            **clean,
            "SEGMENTD_DATABASE_URL": database_url,
            "SEGMENTD_CONFIG_FILE": str(tmp_path / "absent.toml"),
            "SEGMENTD_LOG_LEVEL": "warning",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def listening_line(proc: subprocess.Popen[str]) -> str:
    """The "listening" line (a hint such as "no users yet" may come before it)."""
    assert proc.stdout is not None
    for _ in range(5):
        line = proc.stdout.readline()
        if line.startswith("segmentd listening"):
            return line
    raise AssertionError("no listening line")


def test_listening_line_comes_once_the_port_is_ours(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    with serve(tmp_path, database_url, port) as proc:
        line = listening_line(proc)
        url = f"http://127.0.0.1:{port}"
        assert line.startswith(f"segmentd listening on {url} (auth_url {url}/identity/v3, ")
        # Bound and listening already: a client that connects now is served.
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200


def test_busy_port_is_one_line(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with serve(tmp_path, database_url, port) as proc:
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert out == ""  # no "listening" line for a port we never had
    assert err == f"segmentd: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_public_url_elsewhere_is_warned(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    with serve(tmp_path, database_url, port, SEGMENTD_PUBLIC_URL="http://127.0.0.1:9") as proc:
        assert proc.stderr is not None
        line = listening_line(proc)
        warning = proc.stderr.readline()
    assert "(auth_url http://127.0.0.1:9/identity/v3, " in line
    assert warning.startswith(
        "segmentd: warning: public_url http://127.0.0.1:9 does not match the address served "
        f"(its port is 9, segmentd serves port {port}); clients follow the token catalog"
    )


@pytest.mark.parametrize(
    ("public_url", "host", "port", "why"),
    [
        ("http://127.0.0.1:9696", "127.0.0.1", 9696, None),
        ("http://localhost:9696/", "127.0.0.1", 9696, None),
        ("http://127.0.0.1:9696", "0.0.0.0", 9696, None),  # noqa: S104 - a wildcard bind
        ("http://segmentd.example:9696", "0.0.0.0", 9696, None),  # noqa: S104
        ("http://127.0.0.1:9696", "127.0.0.1", 9699, "its port is 9696, segmentd serves port 9699"),
        ("http://127.0.0.1", "127.0.0.1", 9696, "its port is 80, segmentd serves port 9696"),
        ("https://127.0.0.1:9696", "127.0.0.1", 9696, "it uses https, segmentd serves plain http"),
        (
            "http://192.0.2.1:9696",
            "127.0.0.1",
            9696,
            "192.0.2.1 is not the address served (127.0.0.1)",
        ),
    ],
)
def test_public_url_mismatch(public_url: str, host: str, port: int, why: str | None) -> None:
    assert public_url_mismatch(public_url, host, port) == why
