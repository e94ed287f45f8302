"""The growth and memory benchmarks still run end to end (a few requests each).

Figures are never asserted: they belong in bench/RESULTS-*.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, results: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", *args, "--quick", "--results", str(results)],
        cwd=REPO,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return results.read_text()


@pytest.mark.slow
def test_growth_measures_every_operation_at_every_step(tmp_path: Path) -> None:
    text = _run("bench.growth", "--sizes", "300,600", "--hosts", "40,80", results=tmp_path / "g.md")
    header = next(line for line in text.splitlines() if line.startswith("| operation |"))
    assert "300 seg / 40 hosts" in header and "600 seg / 80 hosts" in header
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith(("| operation", "|---"))
    ]
    labels = {row.split("|")[1].strip() for row in rows}
    assert {"GET one segment", "allocate a VNI, range nearly full", "segments of a host"} <= labels
    assert len(rows) == 10
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        # Every step answered: "cpu / p50" figures, no gaps.
        assert all(" / " in c for c in cells[1:4]), row


@pytest.mark.slow
def test_memory_breakdown_names_the_app_step(tmp_path: Path) -> None:
    text = _run("bench.memory", results=tmp_path / "m.md")
    assert "| segmentd.asgi (modules, app created, policy parsed) |" in text
    assert "| oslo_policy | segmentd.authz |" in text  # who imports what
