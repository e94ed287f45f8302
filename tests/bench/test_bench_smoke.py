"""The benchmark runner still runs end to end and writes a well-formed table.

Timing is never asserted: numbers belong in bench/RESULTS.md, not in tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.ops import OPS
from bench.report import HEADER, MARKER
from bench.runner import CONFIGS

REPO = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@pytest.mark.slow
def test_quick_run_writes_a_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--db", "sqlite", "--results", str(results)],
        cwd=REPO,
        check=True,
        timeout=300,
        capture_output=True,
    )
    text = results.read_text()
    assert MARKER in text
    lines = text.splitlines()
    start = lines.index(HEADER)
    width = HEADER.count("|")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
        assert line.count("|") == width
    assert len(rows) == len(OPS) * len(CONFIGS)
    names = [c.strip() for c in HEADER.strip("|").split("|")]
    cells = [dict(zip(names, row, strict=True)) for row in rows]
    assert {c["operation"] for c in cells} == {op.label for op in OPS}
    numeric = (
        "req/s",
        "p50 ms",
        "p99 ms",
        "floor req/s",
        "x floor",
        "server CPU ms/req",
    )
    for c in cells:
        assert c["DB"] == "sqlite" and c["workers"].isdigit() and c["clients"].isdigit()
        assert all(NUMBER.match(c[name]) for name in numeric), c
        assert c["errors"] == "0"
        assert c["targets"] == "pass" or c["targets"].startswith("miss: ")
