"""Tables for the wire workload: segmentd vs the incumbent, and A/B."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from dataclasses import dataclass
from functools import partial

from bench.ops import INCUMBENT_FACTOR_TARGET, WIRE_OPS
from bench.report import cpu_model, load_average
from bench.wire import Counts, Round, errors_of, median_of

INCUMBENT_HEADER = (
    "| operation | requests | segmentd server CPU ms/req | incumbent server CPU ms/req "
    "| ratio | bare floor CPU ms/req | FastAPI floor CPU ms/req "
    "| segmentd p50 ms | incumbent p50 ms |"
)
AB_HEADER = (
    "| operation | requests/round | baseline server CPU ms/req | current server CPU ms/req "
    "| current / baseline | per-round min | per-round max | best-of ratio "
    "| baseline p50 ms | current p50 ms |"
)
AB_TOLERANCE = 0.05


@dataclass
class RunInfo:
    title: str
    revision: str
    counts: Counts
    rounds: int
    warmup: bool
    load_before: str
    loads: list[float]


def _separator(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def _load_line(info: RunInfo) -> str:
    during = (
        f"{min(info.loads):.2f} / {statistics.median(info.loads):.2f} / {max(info.loads):.2f}"
        if info.loads
        else "unknown"
    )
    return (
        f"load average (1 min) {info.load_before.split()[0]} before, min / median / max "
        f"{during} during ({len(info.loads)} phases), {load_average().split()[0]} after"
    )


def header(info: RunInfo) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    c = info.counts
    warm = " after a warm-up round" if info.warmup else ""
    return (
        f"## {now} - {info.title} - commit {info.revision}\n\n"
        f"Machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}; "
        f"SQLite, 1 worker, 1 client; {info.rounds} round(s){warm}, each "
        f"{c.networks} networks, {c.allocated} + {c.explicit} segments, {c.lists} list pages, "
        f"{c.gets} gets, {c.puts} updates, then every delete; medians over rounds; "
        f"{_load_line(info)}."
    )


def ratios(rounds: list[Round]) -> dict[str, float]:
    """Incumbent CPU / segmentd CPU per operation (medians over rounds)."""
    out = {}
    for op in WIRE_OPS:
        ours = median_of(rounds, "segmentd", op.name, "cpu_ms")
        theirs = median_of(rounds, "incumbent", op.name, "cpu_ms")
        out[op.name] = theirs / ours if ours > 0 else float("nan")
    return out


def incumbent_table(rounds: list[Round], floors: dict[str, dict[str, float]]) -> str:
    lines = [INCUMBENT_HEADER, _separator(INCUMBENT_HEADER)]
    by_op = ratios(rounds)
    for op in WIRE_OPS:
        med = partial(median_of, rounds, op=op.name)
        cells = [
            op.label,
            f"{med(target='segmentd', attr='n'):.0f}",
            f"{med(target='segmentd', attr='cpu_ms'):.3f}",
            f"{med(target='incumbent', attr='cpu_ms'):.2f}",
            f"**{by_op[op.name]:.1f}x**",
            f"{floors.get('floor', {}).get(op.name, float('nan')):.3f}",
            f"{floors.get('fastapi', {}).get(op.name, float('nan')):.3f}",
            f"{med(target='segmentd', attr='p50_ms'):.2f}",
            f"{med(target='incumbent', attr='p50_ms'):.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def incumbent_verdict(rounds: list[Round], rss: dict[str, tuple[float, float]]) -> str:
    by_op = ratios(rounds)
    label = {op.name: op.label for op in WIRE_OPS}
    worst = min(by_op, key=lambda name: by_op[name])
    short = [label[n] for n, r in by_op.items() if not r >= INCUMBENT_FACTOR_TARGET]
    verdict = (
        f"met on every operation (>= {INCUMBENT_FACTOR_TARGET}x)"
        if not short
        else f"missed on {', '.join(short)}"
    )
    errors = {who: errors_of(rounds, who) for who in ("segmentd", "incumbent")}
    rss_text = "; ".join(
        f"{who} {total:.0f} MB (largest process {largest:.0f} MB)"
        for who, (total, largest) in rss.items()
    )
    return (
        f"Ratio = incumbent CPU / segmentd CPU per request. Worst ratio: "
        f"**{by_op[worst]:.1f}x ({label[worst]})**; target {verdict}. "
        f"Errors: segmentd {errors['segmentd']}, incumbent {errors['incumbent']}. "
        f"RSS after the run: {rss_text}."
    )


def paired_ratios(rounds: list[Round], op: str) -> list[float]:
    """current / baseline CPU per round: the two ran the phase back to back."""
    out = []
    for r in rounds:
        base, cur = r["baseline"].get(op), r["current"].get(op)
        if base and cur and base.cpu_ms > 0:
            out.append(cur.cpu_ms / base.cpu_ms)
    return out


def _best(rounds: list[Round], target: str, op: str) -> float:
    """The least CPU per request over the rounds: contention only ever adds."""
    return min((r[target][op].cpu_ms for r in rounds if op in r[target]), default=float("nan"))


def ab_table(rounds: list[Round]) -> str:
    lines = [AB_HEADER, _separator(AB_HEADER)]
    for op in WIRE_OPS:
        pairs = paired_ratios(rounds, op.name) or [float("nan")]
        med = partial(median_of, rounds, op=op.name)
        cells = [
            op.label,
            f"{med(target='current', attr='n'):.0f}",
            f"{med(target='baseline', attr='cpu_ms'):.3f}",
            f"{med(target='current', attr='cpu_ms'):.3f}",
            f"**{statistics.median(pairs):.3f}**",
            f"{min(pairs):.3f}",
            f"{max(pairs):.3f}",
            f"{_best(rounds, 'current', op.name) / _best(rounds, 'baseline', op.name):.3f}",
            f"{med(target='baseline', attr='p50_ms'):.2f}",
            f"{med(target='current', attr='p50_ms'):.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ab_verdict(rounds: list[Round]) -> str:
    medians = {
        op.label: statistics.median(paired_ratios(rounds, op.name) or [1.0]) for op in WIRE_OPS
    }
    outside = {k: v for k, v in medians.items() if abs(v - 1) > AB_TOLERANCE}
    total = statistics.median(medians.values())
    errors = {who: errors_of(rounds, who) for who in ("baseline", "current")}
    text = (
        f"current / baseline = median over rounds of the paired per-phase ratios "
        f"(below 1: the current code costs less CPU); best-of ratio = least CPU per request "
        f"over the rounds, current over baseline. Median over operations: {total:.3f}. "
        f"Errors: baseline {errors['baseline']}, current {errors['current']}. "
    )
    if not outside:
        return text + f"Every operation within ±{AB_TOLERANCE:.0%}."
    listed = ", ".join(f"{k} {v:.3f}" for k, v in outside.items())
    return text + f"Outside ±{AB_TOLERANCE:.0%}: {listed}."
