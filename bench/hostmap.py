"""Host-mapping benchmark (issue 4): ``python -m bench.hostmap [--postgres URL]``.

10,000 hosts, 2,000 VLAN segments over 50 physical networks (40 each).
Topology, chosen to look like a routed (spine-leaf) deployment: physnets
``rack00``..``rack48`` are per-rack, every host reports its rack's physnet;
``shared`` is reported by every fifth host (2,000 hosts).  That gives
10,000 x 40 + 2,000 x 40 = 480,000 mapping rows, and a new ``shared``
segment maps to 2,000 hosts.

It calls the service layer in-process (``services.agents.report_state``,
``services.segments.create``) inside one transaction per request, exactly as
the HTTP handlers do, but without HTTP and JSON: what is measured is the
database work and the number of SQL statements, which is what the targets are
about (full sync < 5 s, an unchanged report = 1 read, 0 writes).  Statements
are counted with a ``before_cursor_execute`` listener; ``BEGIN`` and PRAGMAs
are not counted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.server import fresh_postgres
from segmentd.authz import Policy, Principal
from segmentd.config import Settings
from segmentd.db import migrate
from segmentd.db.models import AgentPhysnet, Network, Segment, new_id
from segmentd.main import build_runtime
from segmentd.services import agents, host_mapping, host_queries, segments
from segmentd.services.agents import AgentReport, ReportPolicy
from segmentd.services.allocation import SegmentSpec
from segmentd.services.query import ListQuery

HOSTS = 10_000
RACKS = 49
SEGMENTS_PER_PHYSNET = 40
BULK = 1_000
ADMIN = Principal(subject="bench", project_id="bench", roles=frozenset({"admin"}), policy=Policy())
PHYSNETS = [f"rack{i:02d}" for i in range(RACKS)] + ["shared"]
RESULTS = Path(__file__).with_name("RESULTS-hostmap.md")


@dataclass
class Row:
    backend: str
    operation: str
    seconds: float
    reads: int
    writes: int
    note: str = ""


class Counter:
    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("SELECT", "WITH"):
            self.reads += 1
        elif verb in ("INSERT", "UPDATE", "DELETE"):
            self.writes += 1


@contextmanager
def measured(engine: Any) -> Iterator[tuple[Counter, list[float]]]:
    counter = Counter()
    elapsed: list[float] = []
    event.listen(engine, "before_cursor_execute", counter)
    start = time.perf_counter()
    try:
        yield counter, elapsed
    finally:
        elapsed.append(time.perf_counter() - start)
        event.remove(engine, "before_cursor_execute", counter)


def host_report(i: int, rack_shift: int = 0, start: bool = False) -> AgentReport:
    rack = PHYSNETS[(i + rack_shift) % RACKS]
    mappings = {rack: "br-rack"}
    if i % 5 == 0:
        mappings["shared"] = "br-shared"
    return AgentReport(
        host=f"compute-{i:05d}",
        agent_type="Open vSwitch agent",
        binary="neutron-openvswitch-agent",
        topic="N/A",
        configurations={"bridge_mappings": mappings},
        start_flag=start,
    )


def populate_segments(session: Session) -> None:
    """2,000 VLAN segments, one network each (setup, not timed)."""
    nets, segs = [], []
    for p, physnet in enumerate(PHYSNETS):
        for v in range(SEGMENTS_PER_PHYSNET):
            net_id = new_id()
            nets.append({"id": net_id, "project_id": "bench", "name": f"n-{p}-{v}"})
            segs.append(
                {
                    "id": new_id(),
                    "network_id": net_id,
                    "network_type": "vlan",
                    "physical_network": physnet,
                    "segmentation_id": 100 + v,
                    "segment_index": 0,
                }
            )
    session.execute(insert(Network), nets)
    session.execute(insert(Segment), segs)


def run(backend: str, url: str, hosts: int) -> list[Row]:
    migrate.upgrade(url)
    ranges = ",".join(f"{p}:1:4094" for p in PHYSNETS)
    settings = Settings(database_url=url, environment="test", network_vlan_ranges=ranges)
    rt = build_runtime(settings)
    engine = rt.db.writer
    policy = ReportPolicy(
        max_agents=BULK,
        heartbeat_write_interval=settings.agent_heartbeat_write_interval,
        max_physnets=settings.max_physnets_per_agent,
    )
    rows: list[Row] = []

    def tx(fn: Callable[[Session], Any]) -> Any:
        with rt.db.transaction(write=True) as session:
            return fn(session)

    def bulks(make: Callable[[int], AgentReport], indexes: list[int]) -> None:
        for start in range(0, len(indexes), BULK):
            part = [make(i) for i in indexes[start : start + BULK]]
            tx(lambda s, part=part: agents.report_state(s, ADMIN, part, policy))

    def record(name: str, fn: Callable[[], Any], note: str = "") -> None:
        with measured(engine) as (counter, elapsed):
            fn()
        rows.append(Row(backend, name, elapsed[0], counter.reads, counter.writes, note))
        print(
            f"  {backend:10} {name:55} {elapsed[0]:8.3f} s  reads {counter.reads:5}  writes {counter.writes:5}",
            flush=True,
        )

    tx(populate_segments)
    everyone = list(range(hosts))
    record(
        f"initial full sync: {hosts} hosts in bulks of {BULK}", lambda: bulks(host_report, everyone)
    )
    pairs = (
        select(func.count())
        .select_from(AgentPhysnet)
        .join(Segment, Segment.physical_network == AgentPhysnet.physical_network)
    )
    total = tx(lambda s: s.scalar(pairs))
    rows[-1].note = f"{total} (segment, host) pairs, derived, none stored"
    record(
        f"resync, no changes: {hosts} hosts in bulks of {BULK}",
        lambda: bulks(host_report, everyone),
    )
    record("one unchanged single report", lambda: bulks(host_report, [1]))
    changed = everyone[:: max(1, hosts // (hosts // 100))][: hosts // 100]
    record(
        f"1% of hosts ({len(changed)}) change one mapping, one bulk",
        lambda: bulks(lambda i: host_report(i, rack_shift=1), changed),
    )
    record(
        f"the same {len(changed)} hosts change back, one report each",
        lambda: [bulks(host_report, [i]) for i in changed],
    )
    record("one changed single report", lambda: bulks(lambda i: host_report(i, rack_shift=2), [7]))

    def new_segment(session: Session) -> int:
        net = Network(id=new_id(), project_id="bench", name="new")
        session.add(net)
        session.flush()
        seg = segments.create(
            session, ADMIN, net.id, SegmentSpec("vlan", "shared", None, None, ""), rt.drivers, 16
        )
        created.append(seg.id)
        hosts_of = host_mapping.hosts_reaching(seg.id).subquery()
        return int(session.scalar(select(func.count()).select_from(hosts_of)) or 0)

    mapped: list[int] = []
    created: list[str] = []
    record("create a segment on 'shared'", lambda: mapped.append(tx(new_segment)))
    rows[-1].note = f"mapped to {mapped[0]} hosts (incl. 1 count query)"
    # Reads now do the join the writes no longer do: measure them too.
    first_page = host_queries.HostQuery(limit=100)
    record(
        f"page of 100 hosts of that segment (of {hosts // 5})",
        lambda: tx(lambda s: host_queries.hosts_of_segment(s, ADMIN, created[0], first_page)),
    )
    record(
        f"page of 100 mapped hosts, all segments (of {hosts})",
        lambda: tx(lambda s: host_queries.mapped_hosts(s, ADMIN, first_page)),
    )
    record(
        "segments of one host (41 of 2001), one page",
        lambda: tx(
            lambda s: host_queries.segments_of_host(s, ADMIN, "compute-00005", ListQuery(limit=100))
        ),
    )
    engine.dispose()
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | operation | seconds | SQL reads | SQL writes | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.backend} | {r.operation} | {r.seconds:.3f} | {r.reads} | {r.writes} | {r.note} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=HOSTS)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SEGMENTD_BENCH_PG_URL"),
        help="server URL, e.g. postgresql+psycopg://postgres@127.0.0.1/postgres; "
        "database hostmap_bench is (re)created beside it",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="do not write bench/RESULTS-hostmap.md"
    )
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run("SQLite", f"sqlite:///{tmp}/hostmap.db", args.hosts)
    if args.postgres:
        url = fresh_postgres(
            make_url(args.postgres).set(database="hostmap_bench").render_as_string(False)
        )
        if url is not None:
            rows += run("PostgreSQL", url, args.hosts)
    out = table(rows)
    print(out)
    if not args.no_write:
        RESULTS.write_text(
            "# Host-mapping benchmark (`python -m bench.hostmap`)\n\n"
            + (__doc__ or "").split("\n\n", 1)[1]
            + "\n\n"
            + out
            + "\n"
        )


if __name__ == "__main__":
    main()
