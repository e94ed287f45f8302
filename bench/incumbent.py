"""The incumbent, Neutron 29, started by its own scripts in ``../shared/incumbent``.

``start.sh`` builds a venv the first time (about 3 minutes), writes its
configuration and a fresh SQLite database under an anchor directory, and
starts uWSGI (1 process, 1 thread) on the port it is given.  The benchmark
uses an anchor directory of its own, so ``FRESH_DB=1`` never touches a
Neutron someone started by hand in the default one; it borrows that one's
venv when it exists rather than building another.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.server import REPO, free_port
from bench.wire import Target

SCRIPTS_ENV = "SEGMENTD_INCUMBENT_DIR"
BASE_ENV = "SEGMENTD_INCUMBENT_BASE"
DEFAULT_BASE = Path.home() / ".cache" / "segmentd-incumbent"
# noauth with the header filter: the incumbent's admin, roles listed in full
# (the filter does not imply member and reader from admin).
AUTH = {"X-Project-Id": "admin-project", "X-User-Id": "admin", "X-Roles": "admin,member,reader"}
START_TIMEOUT = 1800  # seconds: the first start builds the venv


def scripts_dir() -> Path:
    """``../shared/incumbent`` beside the repository, or ``$SEGMENTD_INCUMBENT_DIR``."""
    path = Path(os.environ.get(SCRIPTS_ENV) or REPO.parent / "shared" / "incumbent")
    if not (path / "start.sh").is_file():
        raise FileNotFoundError(
            f"no incumbent scripts at {path} (set {SCRIPTS_ENV} to the directory with start.sh)"
        )
    return path


def anchor_base() -> Path:
    return Path(os.environ.get(BASE_ENV) or DEFAULT_BASE.with_name("segmentd-incumbent-bench"))


def _borrow_venv(base: Path) -> None:
    venv = base / "venv"
    shared = DEFAULT_BASE / "venv"
    if not venv.exists() and (shared / "bin" / "uwsgi").exists() and base != DEFAULT_BASE:
        base.mkdir(parents=True, exist_ok=True)
        venv.symlink_to(shared)


def _env(base: Path, port: int | None = None) -> dict[str, str]:
    env = dict(os.environ, NEUTRON_ANCHOR_BASE=str(base))
    if port is not None:
        env.update(NEUTRON_PORT=str(port), FRESH_DB="1")
    return env


def start() -> Target:
    """A fresh incumbent (empty database) on a free port."""
    scripts, base = scripts_dir(), anchor_base()
    _borrow_venv(base)
    port = free_port()
    print(f"starting the incumbent (anchor {base}, port {port})", flush=True)
    done = subprocess.run(
        ["bash", str(scripts / "start.sh")],
        env=_env(base, port),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"incumbent start.sh failed: {done.stderr[-2000:]}")
    pid = int(done.stdout.split()[-1])

    def stop() -> None:
        subprocess.run(
            ["bash", str(scripts / "stop.sh")],
            env=_env(base),
            capture_output=True,
            timeout=60,
            check=False,
        )

    return Target("incumbent", pid, port, AUTH, stop)
