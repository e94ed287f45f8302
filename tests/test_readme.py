"""The README's commands, run as a reader would run them, so the README cannot rot.

The README marks each ``sh`` block (its "How the README is tested" section
says how): the ``server`` block (``make run``) is run as written in the
repository with a free port, the ``run`` blocks run in order in one bash
session in a scratch directory whose ``.venv`` is this interpreter's venv,
and ``skip`` blocks give their reason.  ``read`` prompts get their answers on
standard input: the admin password the server block printed, then made-up
passwords.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import pytest

from segmentd import settings_doc
from segmentd.config import Settings
from tests.conftest import TEST_DB_ENV, TEST_DB_PREFIX_ENV, _postgres_database
from tests.server import free_port

MARKER = re.compile(r"<!-- readme: (server|run|skip)(.*) -->")
EXPECT = re.compile(r"""expect=(?:"([^"]*)"|'([^']*)')""")
BLOCK_SEPARATOR = "@@readme-block {}@@"
README_PORT = "127.0.0.1:9696"


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    kind: str | None = None  # the marker: server, run, skip
    detail: str = ""
    expects: list[str] = field(default_factory=list)


def parse(readme: str) -> list[Block]:
    """Fenced blocks, each with the marker on the line before it (if any)."""
    lines = readme.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        end = lines.index("```", i + 1)
        block = Block(i + 1, lines[i][3:].strip(), "\n".join(lines[i + 1 : end]) + "\n")
        marker = MARKER.fullmatch(lines[i - 1]) if i > 0 else None
        if marker:
            block.kind, block.detail = marker.group(1), marker.group(2).strip()
            block.expects = [a or b for a, b in EXPECT.findall(block.detail)]
        found.append(block)
        i = end + 1
    return found


@pytest.fixture(scope="module")
def blocks(repo_root: Path) -> list[Block]:
    return parse((repo_root / "README.md").read_text())


def test_every_command_block_is_marked(blocks: list[Block]) -> None:
    shell = [b for b in blocks if b.language in ("sh", "bash", "shell", "console")]
    assert len(shell) >= 8
    unmarked = [b.line for b in shell if b.kind is None]
    assert unmarked == [], (
        f"README lines {unmarked}: mark the block (see 'How the README is tested')"
    )
    assert [b.kind for b in shell].count("server") == 1
    assert shell[0].kind == "server"
    for b in shell:
        if b.kind == "skip":
            assert re.fullmatch(r"\(.{10,}\)", b.detail), f"line {b.line}: say why it is skipped"


def test_settings_table_is_current(repo_root: Path) -> None:
    assert settings_doc.main(["--check", str(repo_root / "README.md")]) == 0, (
        "run `make settings-doc`"
    )


def test_every_setting_is_in_the_table(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"| `{name}` |" in readme


def test_toml_examples_are_valid_settings(blocks: list[Block]) -> None:
    examples = [b for b in blocks if b.language == "toml"]
    assert examples
    for b in examples:
        Settings(**tomllib.loads(b.text))


# The walk-through ---------------------------------------------------------------


def _fresh_database(tmp_path: Path, worker_id: str) -> str:
    base = os.environ.get(TEST_DB_ENV, "sqlite")
    if base == "sqlite":
        return f"sqlite:///{tmp_path / 'readme.db'}"
    prefix = os.environ.get(TEST_DB_PREFIX_ENV, "segmentd_test")
    return _postgres_database(base, f"{prefix}_readme_{worker_id}")


@contextmanager
def server_block(
    block: Block, repo_root: Path, env: dict[str, str], port: int, log: Path
) -> Iterator[str]:
    """Runs the server block as written, in the repository; yields what it printed."""
    # make's VENV: this interpreter's venv (installed already: `make run` finds it so).
    make_env = {**env, "PORT": str(port), "VENV": sys.prefix}
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block.text],
            cwd=repo_root,
            env=make_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make, bootstrap, serve
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", proc, log)
        yield log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300  # `make run` may have to install first
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server block exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server block never answered:\n{log.read_text()}")


def script(blocks: list[Block], port: int) -> str:
    parts = ["set -euo pipefail"]
    for n, b in enumerate(blocks):
        parts.append(f"printf '\\n{BLOCK_SEPARATOR.format(n)}\\n'")
        parts.append(f"# README line {b.line}")
        parts.append(b.text.replace(README_PORT, f"127.0.0.1:{port}"))
    return "\n".join(parts) + "\n"


@pytest.mark.slow
def test_readme_walkthrough(
    blocks: list[Block], repo_root: Path, tmp_path: Path, worker_id: str
) -> None:
    assert sys.prefix != sys.base_prefix, "run the suite from the project's venv (make test)"
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(sys.prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SEGMENTD_"))}
    env |= {
        "SEGMENTD_DATABASE_URL": _fresh_database(tmp_path, worker_id),
        "SEGMENTD_CONFIG_FILE": str(tmp_path / "absent.toml"),
    }
    port = free_port()
    (server,) = [b for b in blocks if b.kind == "server"]
    runs = [b for b in blocks if b.kind == "run"]
    with server_block(server, repo_root, env, port, tmp_path / "server.log") as printed:
        found = re.search(r"^password: (\S+)$", printed, re.MULTILINE)
        assert found, printed
        text = script(runs, port)
        prompts = text.count("read -rs")
        answers = [found.group(1), *(f"readme-pass-{n}" for n in range(1, prompts))]
        (work / "readme.sh").write_text(text)
        done = subprocess.run(
            ["bash", "readme.sh"],
            cwd=work,
            env=env,
            input="\n".join(answers) + "\n",
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    started = done.stdout.count("@@readme-block ")
    failed_at = runs[max(started - 1, 0)].line
    assert done.returncode == 0, (
        f"README block at line {failed_at} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr, done.stderr
    for n, b in enumerate(runs):
        output = done.stdout.split(BLOCK_SEPARATOR.format(n))[1].split("@@readme-block")[0]
        for expected in b.expects:
            assert expected in output, f"README line {b.line}: {expected!r} not in\n{output}"
