"""Another git ref's source, for the A/B mode (``python -m bench --baseline-ref REF``).

``git archive`` of the ref's ``src`` into a temporary directory: no worktree
to register or forget, nothing to install.  The baseline server runs with
that directory first on ``PYTHONPATH`` and this checkout's venv for its
dependencies, so a ref whose dependencies differ needs its own venv (not
handled: A/B is for refactors).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.server import REPO


def _git(*args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.decode().strip()}")
    return done.stdout


def describe(ref: str) -> str:
    """The short commit id a ref names (fails on an unknown ref)."""
    return _git("rev-parse", "--short", f"{ref}^{{commit}}").decode().strip()


@contextmanager
def source_of(ref: str) -> Iterator[Path]:
    """The ``src`` directory of ``ref``, extracted, removed afterwards."""
    archive = _git("archive", "--format=tar", describe(ref), "src")
    with tempfile.TemporaryDirectory(prefix="segmentd-baseline-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp) / "src"
