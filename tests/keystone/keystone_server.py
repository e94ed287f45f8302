"""A real Keystone from PyPI, in a virtualenv of its own, served on loopback.

The virtualenv holds ``keystone`` and ``gunicorn`` pinned by
``constraints.txt`` and is cached under ``~/.cache/segmentd-keystone/``
(``SEGMENTD_KEYSTONE_CACHE`` to move it), keyed by those pins and the
Python version, so only the first run on a machine installs it.  Each test
session gets a fresh Keystone: a new SQLite database, ``keystone-manage
db_sync``, ``fernet_setup``, ``credential_setup``, ``bootstrap``, then
gunicorn on a free port.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

KEYSTONE_RELEASE = "keystone==30.0.0"
SERVER = "gunicorn"
CONSTRAINTS = Path(__file__).with_name("constraints.txt")
ADMIN_PASSWORD = "keystone-admin-pass"  # noqa: S105 - test data
REGION = "RegionOne"

# gunicorn hands keystone its own argv, which oslo.config would parse.
WSGI_ENTRY = """\
import sys

sys.argv = sys.argv[:1]
from keystone.server import wsgi  # noqa: E402

application = wsgi.initialize_public_application()
"""


def cache_root() -> Path:
    default = Path.home() / ".cache" / "segmentd-keystone"
    return Path(os.environ.get("SEGMENTD_KEYSTONE_CACHE", default))


def venv_path() -> Path:
    key = hashlib.sha256(
        f"{KEYSTONE_RELEASE} {SERVER} {sys.version_info[:2]}\n".encode() + CONSTRAINTS.read_bytes()
    ).hexdigest()[:16]
    return cache_root() / f"venv-{key}"


def ensure_venv(log: Path) -> Path:
    """The cached virtualenv, built from PyPI first if missing or half-built."""
    venv = venv_path()
    done = venv / ".complete"
    if done.exists():
        return venv
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per machine; the others wait
        if done.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # an interrupted build
        with open(log, "ab") as out:
            base = getattr(sys, "_base_executable", sys.executable)
            _run([base, "-m", "venv", str(venv)], out)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            _run([*pip, "-c", str(CONSTRAINTS), KEYSTONE_RELEASE, SERVER], out)
        done.touch()
    return venv


def _run(cmd: list[str], out: object, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({done.returncode}); see the log")


class Keystone:
    """One Keystone server: ``start`` sets it up from nothing, ``stop`` ends it."""

    def __init__(self, venv: Path, workdir: Path, port: int, internal_port: int | None = None):
        self.venv = venv
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v3"
        # The catalog's internal identity endpoint (what services validate
        # tokens at): another port, so a test can put a proxy in the way.
        self.internal_url = f"http://127.0.0.1:{internal_port or port}/v3"
        self.log = workdir / "keystone.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SEGMENTD_"))}
        return {**keep, "OS_KEYSTONE_CONFIG_FILES": str(self.workdir / "keystone.conf")}

    def setup(self) -> None:
        work = self.workdir
        for sub in ("fernet-keys", "credential-keys"):
            (work / sub).mkdir(mode=0o700, exist_ok=True)
        (work / "keystone.conf").write_text(
            f"""\
[DEFAULT]
log_file = {self.log}
[database]
connection = sqlite:///{work / "keystone.db"}
[fernet_tokens]
key_repository = {work / "fernet-keys"}
[fernet_receipts]
key_repository = {work / "fernet-keys"}
[credential]
key_repository = {work / "credential-keys"}
[identity]
# bcrypt's cheapest cost: the tests log in often, nobody attacks these hashes.
password_hash_rounds = 4
"""
        )
        (work / "keystone_wsgi.py").write_text(WSGI_ENTRY)
        owner = ["--keystone-user", _user(), "--keystone-group", _group()]
        # Independent steps side by side: each is an interpreter importing keystone.
        self.manage_all(["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner])
        self.manage(
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-region-id",
            REGION,
            "--bootstrap-public-url",
            self.url,
            "--bootstrap-internal-url",
            self.internal_url,
        )

    def manage(self, *args: str) -> None:
        self.manage_all(list(args))

    def manage_all(self, *commands: list[str]) -> None:
        """``keystone-manage`` once per command, all at the same time."""
        conf = str(self.workdir / "keystone.conf")
        manage = [str(self.venv / "bin" / "keystone-manage"), "--config-file", conf]
        with open(self.workdir / "keystone-manage.out", "ab") as out:
            procs = [
                (
                    args,
                    subprocess.Popen(
                        [*manage, *args], stdout=out, stderr=subprocess.STDOUT, env=self.env
                    ),
                )
                for args in commands
            ]
            failed = [args[0] for args, proc in procs if proc.wait() != 0]
        if failed:
            raise RuntimeError(f"keystone-manage {', '.join(failed)} failed; see {out.name}")

    def start(self, timeout: float = 120) -> None:
        cmd = [
            str(self.venv / "bin" / "gunicorn"),
            "--bind",
            f"127.0.0.1:{self.port}",
            # One process (one import of keystone to wait for), a few threads.
            "--workers",
            "1",
            "--threads",
            "4",
            "--chdir",
            str(self.workdir),
            "--access-logfile",
            str(self.workdir / "access.log"),
            "keystone_wsgi:application",
        ]
        out = open(self.workdir / "gunicorn.log", "ab")  # noqa: SIM115 - the server's lifetime
        self._proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"keystone exited with {self._proc.returncode}; see {self.log}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"keystone did not answer at {self.url} within {timeout} s")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _group() -> str:
    import grp

    return grp.getgrgid(os.getgid()).gr_name


@contextmanager
def running_keystone(
    workdir: Path, port: int, internal_port: int | None = None
) -> Iterator[Keystone]:
    venv = ensure_venv(workdir / "venv-build.log")
    keystone = Keystone(venv, workdir, port, internal_port)
    keystone.setup()
    keystone.start()
    try:
        yield keystone
    finally:
        keystone.stop()
