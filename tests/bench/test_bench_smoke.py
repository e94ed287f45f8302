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
    assert {r[3] for r in rows} == {op.label for op in OPS}
    for (
        db,
        workers,
        clients,
        _,
        rps,
        p50,
        p99,
        floor,
        x_floor,
        x_inc,
        *_rest,
        errors,
        target,
    ) in rows:
        assert db == "sqlite" and workers.isdigit() and clients.isdigit()
        assert all(NUMBER.match(v) for v in (rps, p50, p99, floor, x_floor, x_inc)), rows
        assert errors == "0"
        assert target == "pass" or target.startswith("miss: ")
