"""``python -m bench.host_events``: the cost of ``segment_host_mapping`` events.

A segment on a physical network is reached by every host whose agents report
that physnet, so creating or deleting it writes one ``segment_host_mapping``
event per such host (``services.host_events``): one read of the hosts, one
multi-row insert.  This measures what that costs a segment create and delete
with 0, 1,000 and 10,000 hosts on the physnet.

Two ``segmentd serve`` processes of this checkout (one worker each, SQLite by
default, ``--postgres URL`` for PostgreSQL), one with ``events_enabled =
false``, get the same requests, taking turns every 5, the order swapped
every round; the figures are the server process's CPU per request (its CPU
clock, which moves far less with the machine's load than wall time) and the
client's median wall time per request.  Hosts are written straight into
``agents``/``agent_physnets`` (what a report would leave there) between
levels, outside the measured requests; the events of a level are deleted
after it (a delivered, pruned outbox), also outside them.  Results go into
``bench/RESULTS-events.md`` under their own heading, below the runs marker,
leaving the rest of the file as it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, func, insert, select

from bench import server
from bench.auth import TOKEN_ENV
from bench.report import MARKER, commit, load_average
from segmentd.db.models import Agent, AgentPhysnet, Event, new_id

RESULTS = Path(__file__).resolve().parent / "RESULTS-events.md"
LEVELS = (0, 1_000, 10_000)
PHYSNET = "physnet1"
OVS = "Open vSwitch agent"


@dataclass
class Target:
    name: str
    url: str
    srv: server.Server
    token: str
    conn: http.client.HTTPConnection
    network: str = ""
    segments: list[str] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    wall: dict[str, list[float]] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-Auth-Token": self.token, "Content-Type": "application/json"}
        try:
            self.conn.request(method, path, data, headers)
            resp = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # Idle past the server's keep-alive (between levels): a new connection.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=120)
            self.conn.request(method, path, data, headers)
            resp = self.conn.getresponse()
        return server.read_json(resp, f"{self.name} {method} {path}")


def _add_hosts(url: str, start: int, stop: int) -> None:
    """Hosts ``h<start>``..``h<stop-1>``, each an OVS agent reporting ``PHYSNET``."""
    if stop <= start:
        return
    engine = create_engine(url)
    now = dt.datetime.now(dt.UTC)
    try:
        with engine.begin() as conn:
            for lo in range(start, stop, 1000):
                agents = [
                    {
                        "id": new_id(),
                        "host": f"h{i:05d}",
                        "agent_type": OVS,
                        "binary": "neutron-openvswitch-agent",
                        "topic": "N/A",
                        "configurations": {"bridge_mappings": {PHYSNET: "br-phys"}},
                        "config_hash": "bench",
                        "admin_state_up": True,
                        "description": "",
                        "heartbeat_timestamp": now,
                        "started_at": now,
                        "created_at": now,
                    }
                    for i in range(lo, min(stop, lo + 1000))
                ]
                conn.execute(insert(Agent), agents)
                conn.execute(
                    insert(AgentPhysnet),
                    [
                        {
                            "agent_id": a["id"],
                            "physical_network": PHYSNET,
                            "host": a["host"],
                            "agent_type": OVS,
                        }
                        for a in agents
                    ],
                )
    finally:
        engine.dispose()


def _events(url: str, clear: bool = False) -> int:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            found = int(conn.execute(select(func.count()).select_from(Event)).scalar() or 0)
            if clear:
                conn.execute(delete(Event))
            return found
    finally:
        engine.dispose()


def _request(t: Target, op: str, vlan: int) -> None:
    if op == "create":
        body = {
            "segment": {
                "network_id": t.network,
                "network_type": "vlan",
                "physical_network": PHYSNET,
                "segmentation_id": vlan,
            }
        }
        t.segments.append(t.call("POST", "/v2.0/segments", body)["segment"]["id"])
    else:
        t.call("DELETE", f"/v2.0/segments/{t.segments.pop(0)}")


def _phase(targets: tuple[Target, Target], op: str, key: str, vlans: range, chunk: int) -> None:
    """``op`` for each of ``vlans`` on both targets, taking turns every ``chunk``."""
    for lo in range(0, len(vlans), chunk):
        for t in targets:
            cpu_before = server.cpu_seconds(t.srv.pid)
            walls = []
            for vlan in vlans[lo : lo + chunk]:
                started = time.perf_counter()
                _request(t, op, vlan)
                walls.append(time.perf_counter() - started)
            per = (server.cpu_seconds(t.srv.pid) - cpu_before) / len(walls)
            t.cpu.setdefault(key, []).append(per)
            t.wall.setdefault(key, []).extend(walls)


def _start(name: str, url: str, tmp: Path, enabled: bool) -> Target:
    settings = {"SEGMENTD_EVENTS_ENABLED": "true" if enabled else "false"}
    srv = server.start_segmentd(url, 1, tmp, settings)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    t = Target(name, url, srv, os.environ[TOKEN_ENV], conn)
    t.network = t.call("POST", "/v2.0/networks", {"network": {"name": "bench"}})["network"]["id"]
    return t


def _urls(tmp: Path, postgres: str | None) -> dict[str, str] | None:
    if postgres is None:
        return {name: f"sqlite:///{tmp / name}.db" for name in ("on", "off")}
    urls = {}
    for name in ("on", "off"):
        base = postgres.rsplit("/", 1)[0]
        url = server.fresh_postgres(f"{base}/segmentd_bench_hostev_{name}")
        if url is None:
            return None
        urls[name] = url
    return urls


def run(rounds: int, n: int, postgres: str | None, levels: tuple[int, ...] = LEVELS) -> str:
    load_before, revision = load_average(), commit()
    rows = []
    with tempfile.TemporaryDirectory(prefix="segmentd-hostev-bench-") as tmp:
        urls = _urls(Path(tmp), postgres)
        if urls is None:
            raise SystemExit("PostgreSQL unreachable")
        on = _start("on", urls["on"], Path(tmp), True)
        off = _start("off", urls["off"], Path(tmp), False)
        try:
            hosts = 0
            for level_no, level in enumerate(levels):
                for t in (on, off):
                    _add_hosts(t.url, hosts, level)
                hosts = level
                _events(on.url, clear=True)
                for r in range(rounds + 1):  # round 0 warms up
                    order = (on, off) if r % 2 else (off, on)
                    key = f"{level}:{r}"
                    first = 100 + level_no * 1000 + (r % 2) * n  # segments never outlive a round
                    _phase(order, "create", f"create {key}", range(first, first + n), 5)
                    _phase(order, "delete", f"delete {key}", range(first, first + n), 5)
                written = _events(on.url, clear=True)
                rows.append(_row(level, rounds, on, off, written, n))
                print(rows[-1], flush=True)
        finally:
            for t in (on, off):
                t.conn.close()
                server.stop(t.srv)
    load_after = load_average()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    db = "PostgreSQL" if postgres else "SQLite"
    return "\n".join(
        [
            f"## {stamp} - segment_host_mapping fan-out: segment create/delete on a physnet "
            f"of {', '.join(f'{v:,}' for v in levels)} hosts, events on vs off - commit {revision}",
            "",
            f"`python -m bench.host_events` (see its docstring). {db}, 1 worker, 1 client, "
            f"{rounds} rounds after a warm-up round, {n} creates then {n} deletes per round "
            f"and level; load average (1 min) {load_before} before, {load_after} after. "
            "Server CPU ms per request (median over 5-request turns of the measured rounds), "
            "client wall ms per request (median); events = event rows the events-on "
            "server wrote at that level over all rounds, warm-up included.",
            "",
            "| hosts on the physnet | events | create: CPU off | CPU on | on - off "
            "| wall off | wall on | delete: CPU off | CPU on | on - off | wall off | wall on |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def _median(values: dict[str, list[float]], op: str, level: int, rounds: int) -> float:
    keys = [f"{op} {level}:{r}" for r in range(1, rounds + 1)]
    return statistics.median(v for k in keys for v in values[k]) * 1000


def _row(level: int, rounds: int, on: Target, off: Target, written: int, n: int) -> str:
    cells = [f"{level:,}", f"{written:,}"]
    for op in ("create", "delete"):
        c_off, c_on = (_median(t.cpu, op, level, rounds) for t in (off, on))
        w_off, w_on = (_median(t.wall, op, level, rounds) for t in (off, on))
        cells += [f"{c_off:.2f}", f"{c_on:.2f}", f"**{c_on - c_off:+.2f}**"]
        cells += [f"{w_off:.2f}", f"{w_on:.2f}"]
    return "| " + " | ".join(cells) + " |"


def write_section(path: Path, section: str) -> None:
    """``section`` right below the runs marker (newest first); the rest as it was."""
    old = path.read_text() if path.exists() else ""
    head, marker, rest = old.partition(MARKER)
    if not marker:
        path.write_text(f"{old.rstrip()}\n\n{section.strip()}\n")
        return
    path.write_text(f"{head}{marker}\n\n{section.strip()}\n\n{rest.lstrip()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.host_events")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=20, help="creates (and deletes) per round")
    p.add_argument("--postgres", help="a PostgreSQL URL (its host; databases are made)")
    p.add_argument("--levels", default=",".join(map(str, LEVELS)), help="hosts, ascending")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    levels = tuple(int(v) for v in args.levels.split(","))
    section = run(args.rounds, args.requests, args.postgres, levels)
    print(section)
    write_section(args.results, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
