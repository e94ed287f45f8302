"""The wire workload's modes: A/B end to end, the incumbent table from samples.

The incumbent itself (Neutron 29, minutes to start) is not run here; its
side of ``--incumbent`` is the same workload the A/B run drives, and the
table and verdict are checked with fixed samples.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.ops import WIRE_OPS
from bench.wire import Round, Sample
from bench.wire_report import AB_HEADER, INCUMBENT_HEADER, incumbent_table, incumbent_verdict

from bench import incumbent

REPO = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"^\**-?\d+(\.\d+)?x?\**$")


def _rows(text: str, header: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    start = lines.index(header)
    names = [c.strip() for c in header.strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(names, [c.strip() for c in line.strip("|").split("|")], strict=True)))
    return rows


@pytest.mark.slow
def test_ab_run_compares_two_servers_on_every_operation(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS-ab.md"
    cmd = [sys.executable, "-m", "bench", "--baseline-ref", "HEAD", "--quick", "--rounds", "1"]
    subprocess.run(
        [*cmd, "--results", str(results)], cwd=REPO, check=True, timeout=300, capture_output=True
    )
    text = results.read_text()
    rows = _rows(text, AB_HEADER)
    assert [r["operation"] for r in rows] == [op.label for op in WIRE_OPS]
    for row in rows:
        for name, cell in row.items():
            assert name == "operation" or NUMBER.match(cell), (name, cell)
        assert float(row["baseline server CPU ms/req"]) > 0
        assert float(row["current server CPU ms/req"]) > 0
    # Every request answered as expected by both servers.
    assert "Errors: baseline 0, current 0." in text


def _round(ours: float, theirs: float, low: float) -> Round:
    """Every operation ``theirs``, except get and update: ``low``."""

    def sample(cpu: float) -> Sample:
        return Sample(cpu_ms=cpu, p50_ms=cpu, n=10, errors=0, first_error="", mean_body=300)

    return {
        "segmentd": {op.name: sample(ours) for op in WIRE_OPS},
        "incumbent": {
            op.name: sample(low if op.name in ("segment_get", "segment_update") else theirs)
            for op in WIRE_OPS
        },
    }


def test_incumbent_table_gives_medians_ratios_and_the_worst() -> None:
    rounds = [_round(1.0, 20.0, 6.0), _round(6.0, 24.0, 6.0), _round(2.0, 22.0, 6.0)]
    floors = {"floor": {op.name: 0.1 for op in WIRE_OPS}, "fastapi": {}}
    rows = _rows(incumbent_table(rounds, floors), INCUMBENT_HEADER)
    get = next(r for r in rows if r["operation"] == "get one segment")
    assert get["segmentd server CPU ms/req"] == "2.000"  # median (not mean) of 1, 6, 2
    assert get["ratio"] == "**3.0x**"
    assert get["bare floor CPU ms/req"] == "0.100"
    assert get["FastAPI floor CPU ms/req"] == "nan"
    other = next(r for r in rows if r["operation"] == "delete network")
    assert other["ratio"] == "**11.0x**"
    verdict = incumbent_verdict(rounds, {"segmentd": (100.0, 100.0)})
    assert "Worst ratio: **3.0x (get one segment)**" in verdict
    assert "missed on get one segment, update segment name." in verdict


def test_incumbent_scripts_are_found_or_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(incumbent.SCRIPTS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        incumbent.scripts_dir()
    (tmp_path / "start.sh").write_text("exit 1\n")
    assert incumbent.scripts_dir() == tmp_path
