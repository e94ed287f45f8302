"""Runs the real ``segmentd serve`` process on a free loopback port for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    database_url: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Yields the base URL of a live server; stops it (SIGTERM) afterwards.

    Pass ``port`` when the environment must name the URL in advance
    (``SEGMENTD_PUBLIC_URL``, which the identity catalog advertises).
    """
    with running_server_process(database_url, workers, env, log, port) as (base, _):
        yield base


@contextmanager
def running_server_process(
    database_url: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As ``running_server``, with the supervisor process (to find or signal workers)."""
    port = port or free_port()
    # The dev strategy unless a test asks for tokens: most tests are about the API.
    base_env = {"SEGMENTD_AUTH_STRATEGY": "noauth", "SEGMENTD_ENVIRONMENT": "test"}
    full_env = {**os.environ, **base_env, "SEGMENTD_DATABASE_URL": database_url, **(env or {})}
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    cmd = [
        sys.executable,
        "-m",
        "segmentd.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")
