"""The console benchmark runs end to end on small data and writes its table.

Timing is never asserted here: the figures belong in bench/RESULTS-console.md.
"""

from __future__ import annotations

from pathlib import Path

from bench import console


def test_small_run_writes_a_row_per_page(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS-console.md"
    results.write_text("# Console render times\n\nintro\n\n## an earlier run\n\nkept\n")
    console.main(
        [
            "--segments", "200", "--hosts", "50", "--events", "50",
            "--rounds", "2", "--db", "sqlite", "--results", str(results),
        ]
    )  # fmt: skip
    text = results.read_text()
    assert text.startswith("# Console render times")
    assert text.index("### SQLite") < text.index("## an earlier run")  # newest first
    rows = [line for line in text.splitlines() if line.startswith("| ") and "ms" not in line]
    pages = {row.split("|")[1].strip().removesuffix(" **over target**") for row in rows}
    assert {"overview", "pools", "networks", "network", "segments", "audit", "host"} <= pages
    for row in rows:
        statements = int(row.rstrip(" |").rsplit("|", 1)[1])
        assert 0 < statements < 30, row  # bounded: no query per row
