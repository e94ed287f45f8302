"""Starting and stopping the servers under test, and reading their memory."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.auth import TOKEN_ENV

REPO = Path(__file__).resolve().parent.parent
PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/bench_segmentd"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _uvicorn_opts(port: int, workers: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


BENCH_PASSWORD = "bench-admin-password"  # noqa: S105 - a throwaway local bench database
# One principal drives all the load: the limiter still runs (its cost is
# measured) but with limits no benchmark reaches.
UNTHROTTLED = {
    f"SEGMENTD_RATELIMIT_{klass}": "100000000/minute" for klass in ("READ", "WRITE", "REPORT")
} | {
    # Quotas are checked (their cost is measured) but never reached.
    f"SEGMENTD_QUOTA_{resource}": "-1"
    for resource in ("NETWORK", "SUBNET", "SEGMENT")
}


def start_segmentd(
    database_url: str,
    workers: int,
    logdir: Path,
    settings: dict[str, str] | None = None,
    source: Path | None = None,
    launch: str = "segmentd serve",
) -> Server:
    """The real service with token authentication, as production runs it.

    The database is bootstrapped with an admin, and the admin's token is put
    in the environment the load-generator processes inherit (``bench.auth``).
    ``settings`` are extra ``SEGMENTD_*`` variables; ``source`` is another
    checkout's ``src`` directory to run instead of the installed package
    (the A/B mode): it goes first on ``PYTHONPATH``, so it shadows the
    editable install of this checkout.  ``launch`` is how (``bench.memory``
    compares them): ``segmentd serve`` (migrates, then serves in the same
    process), ``segmentd serve --no-upgrade``, or ``uvicorn segmentd.asgi:app``.
    """
    port = free_port()
    env = dict(
        os.environ,
        SEGMENTD_DATABASE_URL=database_url,
        SEGMENTD_AUTH_STRATEGY="token",
        SEGMENTD_BOOTSTRAP_PASSWORD=BENCH_PASSWORD,
        **UNTHROTTLED,
        **(settings or {}),
    )
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    cli = [sys.executable, "-m", "segmentd.cli"]
    subprocess.run([*cli, "bootstrap"], env=env, check=True, capture_output=True)
    if launch.startswith("uvicorn"):
        cmd = [sys.executable, "-m", "uvicorn", "segmentd.asgi:app", *_uvicorn_opts(port, workers)]
        cmd += ["--log-level", "warning", "--no-access-log"]
    else:
        cmd = [*cli, *launch.split()[1:], *_uvicorn_opts(port, workers), "--log-level", "warning"]
    server = _start("segmentd", cmd, env, port, logdir)
    os.environ[TOKEN_ENV] = admin_token(port)
    return server


def admin_token(port: int) -> str:
    body = json.dumps(
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"id": "default"},
                            "password": BENCH_PASSWORD,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
    ).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/identity/v3/auth/tokens", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        token = resp.getheader("X-Subject-Token")
    finally:
        conn.close()
    if resp.status != 201 or not token:
        raise RuntimeError(f"bench login failed with {resp.status}")
    return token


def start_floor(workers: int, logdir: Path, app: str = "bench.floor:app") -> Server:
    """A floor app under the options ``segmentd serve`` passes to uvicorn.run."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *_uvicorn_opts(port, workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "30",
    ]
    return _start(app.split(":")[0].rsplit(".", 1)[-1], cmd, env, port, logdir)


def _start(name: str, cmd: list[str], env: dict[str, str], port: int, logdir: Path) -> Server:
    log = logdir / f"{name}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, proc, port, log)
    _wait_ready(server)
    return server


def _wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), 0.5) as s,
        ):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if s.recv(16).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    stop(server)
    raise RuntimeError(f"{server.name} not ready after {timeout}s")


def stop(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # Field 4 of /proc/<pid>/stat is the parent pid; the name field
            # may contain spaces, so split after its closing parenthesis.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _vmrss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    tree, todo, out = _children(), [pid], []
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(tree.get(current, []))
    return out


def _process_cpu_clock(pid: int) -> int:
    # Linux's CPU-time clock of another process (clock_getcpuclockid):
    # nanosecond resolution, all its threads, the exited ones included.
    return (~pid << 3) | 2


def _cpu_of(pid: int) -> float:
    try:
        return time.clock_gettime(_process_cpu_clock(pid))
    except OSError:
        pass
    # Fallback: utime + stime, in clock ticks (10 ms steps).
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's process tree so far.

    On a shared machine throughput moves with the neighbours' load; CPU per
    request barely does, so it is the figure to compare between runs.  Read
    from each process's CPU clock (nanoseconds), not /proc's 10 ms ticks, so
    a phase of a few hundred requests is measured to well under 1%.
    """
    return sum(_cpu_of(member) for member in _tree(pid))


def rss_mb(pid: int) -> tuple[float, float]:
    """(sum over the process tree, largest single process) in MB.

    With ``--workers N`` uvicorn's supervisor spawns the workers (and a
    multiprocessing resource tracker), so the sum counts every process
    that belongs to the server; the largest is the per-worker figure the
    150 MB target is about.
    """
    sizes = [_vmrss_kb(member) for member in _tree(pid)]
    return sum(sizes) / 1024, max(sizes, default=0) / 1024


def fresh_postgres(url: str) -> str | None:
    """Recreate the benchmark database; None (and why) when PG is unreachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    name = target.database or ""
    if not name or name.startswith("segmentd_test_"):
        raise ValueError(f"refusing to recreate database {name!r}: not a benchmark database")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach PG means "skip PG", not "crash"
        print(
            f"note: PostgreSQL not reachable at {target.host} ({type(exc).__name__}); skipping PG runs"
        )
        return None
    finally:
        admin.dispose()
    return target.render_as_string(hide_password=False)


def read_json(resp: http.client.HTTPResponse, what: str) -> dict[str, Any]:
    """A JSON answer's body, or an error naming ``what`` was asked."""
    raw = resp.read()
    if resp.status >= 300:
        raise RuntimeError(f"{what}: {resp.status} {raw[:200]!r}")
    body: dict[str, Any] = json.loads(raw) if raw else {}
    return body
