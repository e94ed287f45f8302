"""``--incumbent`` and ``--baseline-ref``: the wire workload against two servers."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import baseline, incumbent, server
from bench.ops import WIRE_OPS
from bench.report import INTRO, MARKER, commit, load_average, write_results
from bench.runner import Client
from bench.wire import (
    FULL,
    QUICK,
    Round,
    Target,
    floor_costs,
    median_of,
    run_rounds,
    segmentd_target,
)
from bench.wire_report import (
    RunInfo,
    ab_table,
    ab_verdict,
    header,
    incumbent_table,
    incumbent_verdict,
    ratios,
)


def _stop_all(targets: list[Target]) -> None:
    for target in targets:
        target.stop()


def run_incumbent(quick: bool, rounds: int, results: Path) -> str:
    """segmentd and Neutron 29 side by side; the section is prepended to ``results``."""
    counts = QUICK if quick else FULL
    load_before, revision = load_average(), commit()
    client = Client()
    targets: list[Target] = []
    try:
        with tempfile.TemporaryDirectory(prefix="segmentd-bench-") as tmp:
            workdir = Path(tmp)
            try:
                targets.append(segmentd_target("segmentd", workdir))
                targets.append(incumbent.start())
                kept, loads = run_rounds(client, targets, counts, rounds, warmup=not quick)
                rss = {t.name: server.rss_mb(t.pid) for t in targets}
            finally:
                _stop_all(targets)
            sizes = {op.name: median_of(kept, "segmentd", op.name, "mean_body") for op in WIRE_OPS}
            floors = floor_costs(client, sizes, 0.3 if quick else 1.5, workdir)
    finally:
        client.close()
    info = RunInfo(
        "segmentd vs the incumbent (Neutron 29)",
        revision,
        counts,
        rounds,
        not quick,
        load_before,
        loads,
    )
    section = "\n\n".join(
        [
            header(info),
            "Same requests to both servers, phase by phase (the incumbent's bench_api.py "
            "sequence and bodies); segmentd authenticates every request with a token from its "
            "built-in identity, the incumbent runs noauth with its header filter. Server CPU "
            "per request is the process tree's CPU clock (segmentd: the one worker; "
            "the incumbent: uWSGI master + worker). The floors answer the same methods with "
            "bodies of segmentd's sizes (keep-alive, 1.5 s each).",
            incumbent_table(kept, floors),
            incumbent_verdict(kept, rss),
        ]
    )
    _publish(section, results)
    for name, value in ratios(kept).items():
        print(f"ratio {name}: {value:.1f}x")
    return section


def run_ab(ref: str, quick: bool, rounds: int, results: Path) -> str:
    """This checkout against ``ref``, alternating phase by phase."""
    counts = QUICK if quick else FULL
    load_before, revision, base_rev = load_average(), commit(), baseline.describe(ref)
    client = Client()
    targets: list[Target] = []
    try:
        with baseline.source_of(ref) as src, tempfile.TemporaryDirectory(prefix="ab-") as tmp:
            workdir = Path(tmp)
            try:
                targets.append(segmentd_target("baseline", workdir, source=src))
                targets.append(segmentd_target("current", workdir))
                kept, loads = run_rounds(client, targets, counts, rounds, warmup=not quick)
            finally:
                _stop_all(targets)
    finally:
        client.close()
    title = f"A/B: current ({revision}) vs baseline {ref} ({base_rev})"
    info = RunInfo(title, revision, counts, rounds, not quick, load_before, loads)
    section = "\n\n".join([header(info), ab_table(kept), ab_verdict(kept)])
    _publish(section, results, AB_INTRO)
    return section


AB_INTRO = f"""# segmentd A/B results

Produced by `python -m bench --baseline-ref REF` (see `bench/wire.py`): this
checkout ("current") and the source of REF ("baseline", run from a `git
archive` of its `src` with this venv) on SQLite, one worker each, sent the
same requests phase by phase in alternating order.  "current / baseline" is
the median over rounds of the per-phase CPU ratios; within ±5% counts as no
change.

{MARKER}
"""


def _publish(section: str, results: Path, intro: str = INTRO) -> None:
    print("\n" + section + "\n")
    write_results(results, section, intro)
    print(f"results prepended to {results}")


__all__ = ["Round", "run_ab", "run_incumbent"]
