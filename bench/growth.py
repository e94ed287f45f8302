"""Growth: ``python -m bench.growth [--sizes 1000,10000,100000,1000000] [--db all]``.

How does a request's cost grow with the data?  The database is filled in
steps (bulk INSERTs, ``bench/growth_data.py``: segments, their networks,
agents and their physnets); at each size a real server (``segmentd serve``,
one worker, token authentication) is started on it and every operation is
sent over HTTP, one client, keep-alive: server CPU per request (the process
tree's CPU clock) and wall latency.  Hosts stay at the first ``--hosts``
count through the segment sizes, then grow to each further count at the
largest size.  At the largest size a second server logs its SQL
(``bench/sqltrace.py``) and every statement of an operation that grows is
shown with the database's plan.  Results: ``bench/RESULTS-growth.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import math
import random
import statistics
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import create_engine, text

from bench import growth_data as data
from bench import server, sqltrace
from bench.report import commit, cpu_model, load_average
from segmentd.db import migrate

RESULTS = Path(__file__).with_name("RESULTS-growth.md")
SIZES = (1_000, 10_000, 100_000, 1_000_000)
HOSTS = (10_000, 100_000)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1/growth_bench"


@dataclass
class Budget:
    """Requests per cell: up to ``max_requests`` within ``seconds``, at least ``min_requests``."""

    max_requests: int = 200
    seconds: float = 2.0
    min_requests: int = 5


BUDGET = Budget()  # --quick replaces it
QUICK = Budget(max_requests=10, seconds=0.2, min_requests=2)
ALLOCATIONS = 20  # per size: the VNI range keeps HOLES free IDs per block added


@dataclass
class Op:
    name: str
    label: str
    method: str
    paths: list[str]
    status: int
    body: bytes = b""
    max_requests: int = 1_000_000  # capped by the budget


@dataclass
class Measure:
    cpu_ms: float
    p50_ms: float
    n: int


@dataclass
class Point:
    db: str
    segments: int
    hosts: int
    fill_s: float
    measures: dict[str, Measure] = field(default_factory=dict)


class Http:
    """One keep-alive connection; the runner is the only client."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"X-Auth-Token": token, "Content-Type": "application/json"}

    def send(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.conn.request(method, path, body or None, self.headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


def _q(**params: str) -> str:
    return urllib.parse.urlencode(params)


def operations(samples: dict[str, list[str]]) -> list[Op]:
    """The measured requests, built from ids picked in the filled database."""
    seg, deep, net = samples["segment"], samples["deep_marker"][0], samples["network"][0]
    vlan_seg, host = samples["vlan_segment"][0], data.host_name(0)
    alloc = orjson.dumps({"segment": {"network_id": net, "network_type": "vxlan"}})
    return [
        Op("get", "GET one segment", "GET", [f"/v2.0/segments/{s}" for s in seg], 200),
        Op("list_first", "list, first page of 100", "GET", ["/v2.0/segments?limit=100"], 200),
        Op(
            "list_deep",
            "list, page of 100 near the end (marker)",
            "GET",
            [f"/v2.0/segments?{_q(limit='100', marker=deep)}"],
            200,
        ),
        Op(
            "list_vlan_physnet",
            "list, filtered: vlan on one physnet",
            "GET",
            [f"/v2.0/segments?{_q(network_type='vlan', physical_network=data.physnet(0))}"],
            200,
        ),
        Op(
            "list_vxlan",
            "list, filtered: network_type=vxlan (3 in 4 rows)",
            "GET",
            [f"/v2.0/segments?{_q(network_type='vxlan')}"],
            200,
        ),
        Op(
            "allocate",
            "allocate a VNI, range nearly full",
            "POST",
            ["/v2.0/segments"],
            201,
            alloc,
            ALLOCATIONS,
        ),
        Op(
            "segment_hosts",
            "hosts of a VLAN segment",
            "GET",
            [f"/v2.0/segments/{vlan_seg}/hosts"],
            200,
        ),
        Op("host_segments", "segments of a host", "GET", [f"/v2.0/hosts/{host}/segments"], 200),
        Op(
            "mappings_include",
            "segment-host-mappings, include OVS",
            "GET",
            [f"/v2.0/segment-host-mappings?{_q(include_agent_types=data.OVS)}"],
            200,
        ),
        Op(
            "mappings_exclude",
            "segment-host-mappings, exclude Linux bridge",
            "GET",
            [f"/v2.0/segment-host-mappings?{_q(exclude_agent_types=data.LINUXBRIDGE)}"],
            200,
        ),
    ]


class CpuMeter:
    """CPU of the server's process tree and, on PostgreSQL, of its backends.

    On PostgreSQL a query's work is done by the backend process serving the
    connection, not by segmentd: counting only segmentd would hide a
    query that grows with the table.
    """

    def __init__(self, url: str, pid: int) -> None:
        self.pid = pid
        self.dsn = (
            url.replace("postgresql+psycopg://", "postgresql://") if "postgresql" in url else None
        )

    def _backends(self) -> dict[int, float]:
        if self.dsn is None:
            return {}
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        return {pid: server.cpu_seconds(pid) for (pid,) in pids}

    def read(self) -> tuple[float, dict[int, float]]:
        return server.cpu_seconds(self.pid), self._backends()

    def since(self, before: tuple[float, dict[int, float]]) -> float:
        app, backends = self.read()
        # A backend that appeared during the phase started from nothing.
        db = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in backends.items())
        return app - before[0] + db


def measure(client: Http, meter: CpuMeter, op: Op) -> Measure:
    """Requests within the budget (and ``op.max_requests``)."""
    most = min(op.max_requests, BUDGET.max_requests)
    for path in op.paths[:2]:  # warm-up: caches, compiled statements
        if op.method == "GET":
            client.send(op.method, path, op.body)
    latencies: list[float] = []
    cpu0 = meter.read()
    started = time.perf_counter()
    while len(latencies) < most and (
        len(latencies) < BUDGET.min_requests or time.perf_counter() - started < BUDGET.seconds
    ):
        path = op.paths[len(latencies) % len(op.paths)]
        t0 = time.perf_counter()
        status, body = client.send(op.method, path, op.body)
        latencies.append(time.perf_counter() - t0)
        if status != op.status:
            raise RuntimeError(f"{op.name}: {status} {body[:300]!r}")
    cpu = meter.since(cpu0)
    return Measure(1000 * cpu / len(latencies), 1000 * statistics.median(latencies), len(latencies))


def pick_samples(url: str, segments: int) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:

            def scalars(sql: str) -> list[str]:
                return list(conn.execute(text(sql)).scalars())

            return {
                "segment": scalars("SELECT id FROM segments ORDER BY random() LIMIT 100"),
                "deep_marker": scalars(
                    f"SELECT id FROM segments ORDER BY id LIMIT 1 OFFSET {max(0, segments - 150)}"  # noqa: S608 - an integer
                ),
                "network": scalars("SELECT id FROM networks ORDER BY id LIMIT 1"),
                "vlan_segment": scalars(
                    f"SELECT id FROM segments WHERE physical_network = '{data.physnet(0)}' LIMIT 1"  # noqa: S608 - our constant
                ),
            }
    finally:
        engine.dispose()


def _settings(layout: data.Layout) -> dict[str, str]:
    return {
        "SEGMENTD_NETWORK_VLAN_RANGES": layout.vlan_ranges(),
        "SEGMENTD_VNI_RANGES": f"1:{layout.vni_top}",
        "SEGMENTD_PAGINATION_DEFAULT_LIMIT": "100",
    }


def measure_point(url: str, layout: data.Layout, point: Point, workdir: Path) -> list[Op]:
    ops = operations(pick_samples(url, layout.segments))
    srv = server.start_segmentd(url, 1, workdir, _settings(layout))
    client = Http(srv.port, server.admin_token(srv.port))
    try:
        for op in ops:
            point.measures[op.name] = m = measure(client, CpuMeter(url, srv.pid), op)
            print(
                f"  {point.db:10} {point.segments:>9} seg {point.hosts:>7} hosts {op.label:48} "
                f"cpu {m.cpu_ms:8.2f} ms/req  p50 {m.p50_ms:8.2f} ms  n {m.n}",
                flush=True,
            )
    finally:
        client.close()
        server.stop(srv)
    # The allocations took VNIs from the range's holes; the layout's top is unchanged.
    return ops


def plans(
    url: str, layout: data.Layout, ops: list[Op], workdir: Path
) -> dict[str, list[tuple[str, list[str]]]]:
    """Each operation's statements and their plans, from a server that logs its SQL."""
    log = workdir / "sql.log"
    extra = {**_settings(layout), **sqltrace.trace_env(workdir, log)}
    srv = server.start_segmentd(url, 1, workdir, extra)
    client = Http(srv.port, server.admin_token(srv.port))
    out: dict[str, list[tuple[str, list[str]]]] = {}
    try:
        client.send("GET", "/v2.0/segments?limit=1")  # token and start-up queries out of the way
        sqltrace.take(log)
        for op in ops:
            client.send(op.method, op.paths[0], op.body)
            statements = sqltrace.take(log)
            out[op.name] = [(sql, sqltrace.explain(url, sql, params)) for sql, params in statements]
    finally:
        client.close()
        server.stop(srv)
    return out


def run_db(
    db: str, url: str, sizes: list[int], hosts: list[int], workdir: Path
) -> tuple[list[Point], dict[str, list[tuple[str, list[str]]]], list[Op]]:
    migrate.upgrade(url)
    engine = create_engine(url)
    loader = data.Loader(engine)
    layout = data.Layout(physnets=data.physnets_for(max(sizes)))
    rng = random.Random(20)  # a fixed layout, not secrets
    points: list[Point] = []
    ops: list[Op] = []
    steps = [(size, hosts[0]) for size in sizes] + [(sizes[-1], h) for h in hosts[1:]]
    try:
        for size, host_count in steps:
            started = time.perf_counter()
            data.grow_segments(loader, layout, size, rng)
            data.grow_hosts(loader, layout, host_count, rng)
            if db == "postgresql":
                with engine.connect() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.commit()
            point = Point(db, size, host_count, time.perf_counter() - started)
            print(
                f"{db}: {size} segments, {host_count} hosts filled in {point.fill_s:.1f} s",
                flush=True,
            )
            ops = measure_point(url, layout, point, workdir)
            points.append(point)
        traced = plans(url, layout, ops, workdir)
    finally:
        engine.dispose()
    return points, traced, ops


# Report ---------------------------------------------------------------------------


def _label(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def verdict(points: list[Point], op: str) -> tuple[str, bool]:
    """How the CPU per request grows over the segment sizes; True when linear."""
    by_size = [p for p in points if p.hosts == points[0].hosts]
    if len(by_size) < 2:
        return "-", False
    first, last = by_size[0].measures[op].cpu_ms, by_size[-1].measures[op].cpu_ms
    prev = by_size[-2]
    slope = math.log(last / prev.measures[op].cpu_ms) / math.log(
        by_size[-1].segments / prev.segments
    )
    total = last / first
    if slope > 0.5:
        return f"**linear** (x{total:.1f}; last step slope {slope:.2f})", True
    if total < 1.5:
        return f"flat (x{total:.2f})", False
    return f"grows slowly (x{total:.1f}; last step slope {slope:.2f})", False


def host_verdict(points: list[Point], op: str) -> tuple[str, bool]:
    """CPU at the most hosts over CPU at the fewest, at the largest size."""
    largest = [p for p in points if p.segments == points[-1].segments]
    if len(largest) < 2:
        return "-", False
    ratio = largest[-1].measures[op].cpu_ms / largest[0].measures[op].cpu_ms
    hosts = largest[-1].hosts / largest[0].hosts
    grows = ratio > math.sqrt(hosts)
    return (f"**x{ratio:.1f}**" if grows else f"x{ratio:.2f}"), grows


def table(points: list[Point], ops: list[Op]) -> tuple[str, list[str]]:
    columns = [f"{_label(p.segments)} seg / {_label(p.hosts)} hosts" for p in points]
    header = "| operation | " + " | ".join(columns) + " | over segment sizes | more hosts |"
    lines = [header, "|---" * (len(columns) + 3) + "|"]
    flagged = []
    for op in ops:
        cells = [
            f"{p.measures[op.name].cpu_ms:.2f} / {p.measures[op.name].p50_ms:.2f}" for p in points
        ]
        growth, linear = verdict(points, op.name)
        hosts, more = host_verdict(points, op.name)
        if linear or more:
            flagged.append(op.name)
        lines.append(f"| {op.label} | " + " | ".join(cells) + f" | {growth} | {hosts} |")
    return "\n".join(lines), flagged


def plan_section(
    url: str, traced: dict[str, list[tuple[str, list[str]]]], ops: list[Op], flagged: list[str]
) -> str:
    # Statements most requests run (token, caller) are the same everywhere: left out.
    seen: dict[str, int] = {}
    for statements in traced.values():
        for sql in {sql for sql, _ in statements}:
            seen[sql] = seen.get(sql, 0) + 1
    common = {sql for sql, count in seen.items() if count > len(traced) / 2}
    parts = []
    for op in ops:
        if op.name not in flagged:
            continue
        parts.append(f"#### {op.label}\n")
        # not plan: a single-row write
        shown = [(sql, plan) for sql, plan in traced.get(op.name, []) if sql not in common and plan]
        suspects = [(sql, plan) for sql, plan in shown if sqltrace.scans(plan, url)]
        if suspects:
            omitted = len(shown) - len(suspects)
            parts.append(
                f"({omitted} statement(s) of this request with index-only plans not shown.)\n"
            )
        for sql, plan in suspects or shown:
            mark = " (reads a whole table or index, or sorts)" if sqltrace.scans(plan, url) else ""
            parts.append(
                f"```sql\n{sql.strip()}\n```\n\nplan{mark}:\n\n```\n" + "\n".join(plan) + "\n```\n"
            )
    return "\n".join(parts) if parts else "Nothing grows linearly: no plans to show.\n"


def section(
    db: str,
    url: str,
    points: list[Point],
    traced: dict[str, list[tuple[str, list[str]]]],
    ops: list[Op],
    wall: float,
) -> str:
    body, flagged = table(points, ops)
    fills = ", ".join(f"{_label(p.segments)}/{_label(p.hosts)}: {p.fill_s:.0f} s" for p in points)
    return (
        f"### {db}\n\nCells: server CPU ms per request / wall p50 ms (one client, keep-alive; "
        + (
            "CPU counts segmentd and the PostgreSQL backends serving it; "
            if db == "postgresql"
            else ""
        )
        + f"up to {BUDGET.max_requests} requests or {BUDGET.seconds:g} s per cell, {ALLOCATIONS} allocations). "
        f"Fill time per step: {fills}. Wall time of this database's run: {wall:.0f} s.\n\n"
        f"{body}\n\n"
        f"Plans at the largest size for what grows ({', '.join(flagged) or 'nothing'}):\n\n"
        f"{plan_section(url, traced, ops, flagged)}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="segment counts, ascending")
    p.add_argument("--hosts", default=",".join(map(str, HOSTS)), help="host counts, ascending")
    p.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="sqlite")
    p.add_argument("--pg-url", default=PG_URL, help="benchmark database, recreated")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--quick", action="store_true", help="a few requests per cell (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        global BUDGET
        BUDGET = QUICK
    sizes = sorted(int(s) for s in args.sizes.split(","))
    hosts = sorted(int(h) for h in args.hosts.split(","))
    load_before, revision = load_average(), commit()
    sections, total = [], time.perf_counter()
    dbs = ("sqlite", "postgresql") if args.db == "all" else (args.db,)
    with tempfile.TemporaryDirectory(prefix="segmentd-growth-") as tmp:
        for db in dbs:
            url = (
                f"sqlite:///{tmp}/growth.db"
                if db == "sqlite"
                else server.fresh_postgres(args.pg_url)
            )
            if url is None:
                continue
            started = time.perf_counter()
            points, traced, ops = run_db(db, url, sizes, hosts, Path(tmp))
            sections.append(section(db, url, points, traced, ops, time.perf_counter() - started))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text_out = (
        "# Growth benchmark (`python -m bench.growth`)\n\n"
        + (__doc__ or "").split("\n\n", 1)[1].strip()
        + "\n\n"
        + (data.__doc__ or "").split("\n\n", 1)[1].strip()
        + f"\n\n## {now} - commit {revision}\n\n"
        f"Machine: 2 cores, {cpu_model()}; load average {load_before} before, "
        f"{load_average()} after; whole run {time.perf_counter() - total:.0f} s.\n\n"
        + "\n\n".join(sections)
    )
    print(text_out)
    if not args.no_write:
        args.results.write_text(text_out.rstrip() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
