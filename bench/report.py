"""Statistics, the results table, and RESULTS.md (newest run on top)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.ops import (
    INCUMBENT_FACTOR_TARGET,
    READ_P99_TARGET_CLIENTS,
    READ_P99_TARGET_MS,
    RSS_TARGET_MB,
    Op,
)
from bench.server import REPO

MARKER = "<!-- runs below, newest first -->"
HEADER = (
    "| DB | workers | clients | operation | req/s | p50 ms | p99 ms | floor req/s | x floor "
    "| FastAPI floor req/s | x FastAPI floor | server CPU ms/req | RSS MB (largest) | client CPU | n | errors | targets |"
)
INTRO = f"""# segmentd benchmark results

Produced by `python -m bench` (see `bench/__main__.py`).  Each row is one
operation against the real server (`segmentd serve`, fresh database);
"floor" is a bare ASGI app (`bench/floor.py`) under the same uvicorn options
answering a JSON body of the same size, measured in the same run.
"FastAPI floor" (`bench/framework_floor.py`) answers the same bytes from an
async FastAPI route that does nothing else: "x FastAPI floor" is the share
of the framework's best that segmentd keeps while doing its work (for
information; the targets are set against the bare floor).
RSS is the server's VmRSS after the operation: the sum over
its process tree, and in brackets the largest single process (the worker).
"server CPU ms/req" is the server's user+system CPU per request (warm-up
included): on a shared machine it moves far less with the neighbours' load
than req/s does, so compare it between runs.  "client CPU" is the load
generator's share of one core: near 100% means the client, not the
server, was the limit.  Targets: GET/list >= 0.5 x
floor, writes >= 0.33 x floor, read p99 < {READ_P99_TARGET_MS} ms at {READ_P99_TARGET_CLIENTS} clients, worker
RSS < {RSS_TARGET_MB} MB.

The incumbent is not a fixed figure any more: `python -m bench --incumbent`
starts Neutron 29 (`../shared/incumbent/`) beside segmentd and sends both the
same requests, phase by phase, in the same run; its sections ("segmentd vs
the incumbent") give server CPU per request side by side, and the target is
>= {INCUMBENT_FACTOR_TARGET}x less CPU than the incumbent on every operation (SQLite, 1 worker, 1 client).

{MARKER}
"""


@dataclass
class Row:
    db: str
    workers: int
    clients: int
    op: Op
    latencies_ns: list[int]
    elapsed: float
    errors: int
    client_cpu: float
    rss_total: float = 0.0
    rss_max: float = 0.0
    floor_rps: float | None = None
    framework_rps: float | None = None
    server_cpu_ms: float = 0.0  # server process-tree CPU per request

    @property
    def rps(self) -> float:
        return len(self.latencies_ns) / self.elapsed

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        rank = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
        return ordered[rank] / 1e6

    @property
    def x_floor(self) -> float | None:
        return self.rps / self.floor_rps if self.floor_rps else None

    def misses(self) -> list[str]:
        out = []
        ratio = self.x_floor
        if ratio is not None and ratio < self.op.floor_target:
            out.append(f"floor {ratio:.2f}<{self.op.floor_target}")
        p99 = self.percentile_ms(0.99)
        if (
            self.op.is_read
            and self.clients >= READ_P99_TARGET_CLIENTS
            and not p99 < READ_P99_TARGET_MS
        ):
            out.append(f"p99 {p99:.0f}>{READ_P99_TARGET_MS}ms")
        if self.rss_max >= RSS_TARGET_MB:
            out.append(f"rss {self.rss_max:.0f}>{RSS_TARGET_MB}MB")
        if self.errors:
            out.append(f"{self.errors} errors")
        return out


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_line(row: Row) -> str:
    misses = row.misses()
    cells = [
        row.db,
        str(row.workers),
        str(row.clients),
        row.op.label,
        _fmt(row.rps),
        _fmt(row.percentile_ms(0.5), 2),
        _fmt(row.percentile_ms(0.99), 2),
        _fmt(row.floor_rps),
        _fmt(row.x_floor, 2),
        _fmt(row.framework_rps),
        _fmt(row.rps / row.framework_rps if row.framework_rps else None, 2),
        _fmt(row.server_cpu_ms, 2),
        f"{row.rss_total:.0f} ({row.rss_max:.0f})",
        f"{row.client_cpu:.0%}",
        str(len(row.latencies_ns)),
        str(row.errors),
        "pass" if not misses else "miss: " + "; ".join(misses),
    ]
    return "| " + " | ".join(cells) + " |"


def table(rows: list[Row]) -> str:
    separator = "|" + "---|" * HEADER.count(" | ") + "---|"
    return "\n".join([HEADER, separator, *map(table_line, rows)])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    short = git("rev-parse", "--short", "HEAD") or "unknown"
    # Uncommitted source changes would make the commit id a lie; say so.
    dirty = git("status", "--porcelain", "--", "src", "bench")
    return f"{short}-dirty" if dirty else short


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run_header(
    db_kinds: list[str], duration: float, quick: bool, load_before: str, revision: str
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick" if quick else "full"
    return (
        f"## {now} - commit {revision} - {', '.join(db_kinds)}\n\n"
        f"Machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}; "
        f"{mode} run, {duration:g} s per operation after warm-up; "
        f"load average (1/5/15 min) {load_before} before, {load_average()} after "
        "(other jobs on this machine lower req/s, see server CPU/req)."
    )


def write_results(path: Path, section: str, intro: str = INTRO) -> None:
    """Put ``section`` above earlier runs, keeping them for the trend.

    The text above the marker is regenerated, so it always describes the
    current columns; everything below it is data and is kept verbatim.
    """
    old = path.read_text() if path.exists() else ""
    earlier = old.partition(MARKER)[2] if MARKER in old else old
    path.write_text(f"{intro}\n{section.strip()}\n\n{earlier.lstrip()}".rstrip() + "\n")
