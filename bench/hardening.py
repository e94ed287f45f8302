"""Costs an attacker could impose (issue 15, items 3, 8, 9, 10): ``python -m bench.hardening``.

Each scenario drives a real ``segmentd serve`` (SQLite, one worker, token
authentication) over loopback and prints one line per measurement:

- ``headers``: one ``GET /healthz`` whose header section is N MiB, while a
  probe client sends small ``/healthz`` requests; the time until the big
  request is answered (or refused) and the slowest probe in that time.
- ``slow``: 300 connections that send a request head with
  ``Content-Length: 1000`` and one byte of body, then nothing; how many the
  server still holds open after each interval.
- ``bulk``: an agent bulk report at the caps (``max_agents_per_report``
  agents x ``--physnets`` physical networks each, ``max_physnets_per_agent``
  when unset, else the server's setting is raised to it) while four clients
  create and delete networks (other writes, which on SQLite wait for the
  report's write); the report's time, the latencies of the writes in flight
  at some point during it, and the worker's resident memory.
- ``ranges``: a VXLAN range whose every other VNI is used (4,100 used);
  ``GET /v2.0/network_segment_ranges`` latency.

Options: ``--only headers,slow,bulk,ranges``; ``--physnets N`` (bulk).
Figures and their context go to ``bench/RESULTS-hardening.md`` by hand.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from bench.auth import auth_headers
from bench.server import Server, cpu_seconds, start_segmentd, stop
from segmentd.config import Settings
from segmentd.db.models import Network, Segment, new_id

# Plumbing ---------------------------------------------------------------------------


def _request(
    port: int, method: str, path: str, body: Any = None, timeout: float = 120
) -> tuple[int, bytes, float]:
    """(status, body, seconds) of one request on a fresh connection."""
    headers = {**auth_headers(), "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request(method, path, data, headers)
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    return resp.status, payload, time.perf_counter() - started


def _worker_rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of one process, MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Background:
    """Runs ``fn`` in a loop on ``threads`` threads; ``fn`` records into ``self.samples``."""

    def __init__(self, fn: Callable[[Background], None], threads: int = 1) -> None:
        self.fn = fn
        self.samples: list[tuple[float, float]] = []  # (started, seconds)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.fn(self)

    def timed(self, started: float, seconds: float) -> None:
        self.samples.append((started, seconds))

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of the calls that overlap ``[start, end]`` (in flight at some point)."""
        return [took for began, took in self.samples if began < end and began + took > start]

    def __enter__(self) -> Background:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# Scenarios ----------------------------------------------------------------------------


def _healthz_probe(port: int, into: Background) -> None:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    into.timed(started, time.perf_counter() - started)
    time.sleep(0.05)


def headers(server: Server, _args: argparse.Namespace) -> None:
    for mib in (0.0625, 1, 4, 16, 64):
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\nConnection: close\r\n\r\n" % (
            b"a" * int(mib * 1024 * 1024)
        )
        with Background(lambda into: _healthz_probe(server.port, into)) as probe:
            time.sleep(0.3)
            started = time.perf_counter()
            answer = _send_and_read(server.port, head)
            elapsed = time.perf_counter() - started
            time.sleep(0.3)
        during = probe.between(started, started + elapsed)
        slowest = _ms(max(during)) if during else "none in flight"
        print(
            f"headers {mib:g} MiB: {answer}, answered in {_ms(elapsed)}; "
            f"slowest /healthz probe meanwhile: {slowest}"
        )


def _send_and_read(port: int, data: bytes) -> str:
    """The status line the server answers (or what stopped us), sending all of ``data``."""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        sent_all = True
        try:
            sock.sendall(data)
        except OSError:
            sent_all = False  # the server closed before reading everything
        try:
            reply = sock.recv(65536)
        except OSError as exc:
            return f"{type(exc).__name__} ({'all' if sent_all else 'not all'} sent)"
    line = reply.split(b"\r\n", 1)[0].decode() or "closed"
    return f"{line} ({'all' if sent_all else 'not all'} sent)"


def slow(server: Server, _args: argparse.Namespace) -> None:
    head = (
        b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Auth-Token: %s\r\nContent-Length: 1000\r\n\r\n{"
    ) % auth_headers()["X-Auth-Token"].encode()
    socks = []
    for _ in range(300):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(head)
        sock.setblocking(False)
        socks.append(sock)
    started = time.perf_counter()
    status, _, took = _request(server.port, "GET", "/healthz")
    print(
        f"slow: 300 connections hold 1 of 1000 body bytes; a /healthz meanwhile: {status} in {_ms(took)}"
    )
    for wait in (5, 15, 35, 65, 95):
        time.sleep(max(0.0, started + wait - time.perf_counter()))
        print(f"slow: after {wait:>2} s, {sum(not _closed(s) for s in socks)} of 300 still open")
    for sock in socks:
        sock.close()


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536, socket.MSG_PEEK) == b"" or _drain_then_closed(sock)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _drain_then_closed(sock: socket.socket) -> bool:
    """A reply was sent: the connection is closed once the rest of it is read."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    return True


def _network_churn(port: int, into: Background) -> None:
    """One network create and delete, each timed (writes that queue behind a report)."""
    started = time.perf_counter()
    status, body, took = _request(port, "POST", "/v2.0/networks", {"network": {"name": "w"}})
    into.timed(started, took)
    if status == 201:
        started = time.perf_counter()
        net_id = json.loads(body)["network"]["id"]
        into.timed(started, _request(port, "DELETE", f"/v2.0/networks/{net_id}")[2])


def bulk(server: Server, args: argparse.Namespace) -> None:
    physnets = args.physnets
    report: dict[str, list[dict[str, Any]]] = {
        "agents": [
            {
                "host": f"host-{i:05d}",
                "agent_type": "Open vSwitch agent",
                "binary": "neutron-openvswitch-agent",
                "topic": "N/A",
                "configurations": {"bridge_mappings": {f"p{p}": "br" for p in range(physnets)}},
            }
            for i in range(1000)
        ]
    }
    size = len(json.dumps(report))
    base_rss, _ = _worker_rss_mb(server.pid)
    for attempt in ("first (all created)", "again, start_flag (all rewritten)"):
        if "start_flag" in attempt:
            for agent in report["agents"]:
                agent["start_flag"] = True
        with Background(lambda into: _network_churn(server.port, into), threads=4) as writes:
            time.sleep(2.0)
            started, cpu = time.perf_counter(), cpu_seconds(server.pid)
            status, _, took = _request(server.port, "POST", "/v2.0/agents/report/bulk", report)
            cpu = cpu_seconds(server.pid) - cpu
        quiet = [t for b, t in writes.samples if b + t < started]
        during = writes.between(started, started + took)
        rss, peak = _worker_rss_mb(server.pid)
        during_p50 = _ms(statistics.median(during)) if during else "none finished"
        print(
            f"bulk {attempt}: 1000 agents x {physnets} physnets ({size / 2**20:.1f} MiB): "
            f"{status} in {_ms(took)} (server CPU {cpu:.1f} s); other writes p50 {_ms(statistics.median(quiet))} before, "
            f"{during_p50} during ({len(during)} overlapping it, slowest {_ms(max(during, default=0))}); "
            f"RSS {base_rss:.0f} -> {rss:.0f} MB (peak {peak:.0f})"
        )


def ranges(server: Server, args: argparse.Namespace) -> None:
    engine = create_engine(args.database_url)
    used = 4100
    with engine.begin() as conn:
        net_id = new_id()
        conn.execute(insert(Network), [{"id": net_id, "project_id": "bench", "name": "vnis"}])
        conn.execute(
            insert(Segment),
            [
                {
                    "id": new_id(),
                    "network_id": net_id,
                    "network_type": "vxlan",
                    "segmentation_id": 2 * i + 1,
                    "segment_index": i,
                }
                for i in range(used)
            ],
        )
    engine.dispose()
    path = "/v2.0/network_segment_ranges?network_type=vxlan"
    timings = [_request(server.port, "GET", path)[2] for _ in range(5)]
    print(
        f"ranges: {used} alternating used VNIs, GET {path}: "
        f"median {_ms(statistics.median(timings))} of 5 (min {_ms(min(timings))})"
    )


SCENARIOS: dict[str, Callable[[Server, argparse.Namespace], None]] = {
    "headers": headers,
    "slow": slow,
    "bulk": bulk,
    "ranges": ranges,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--physnets", type=int, default=None)
    args = parser.parse_args()
    if args.physnets is None:
        # Older code has no such setting: the schema's cap of the time, 256.
        args.physnets = getattr(Settings(), "max_physnets_per_agent", 256)
    else:  # the server under test must accept them (on code without the setting: ignored)
        os.environ["SEGMENTD_MAX_PHYSNETS_PER_AGENT"] = str(args.physnets)
    chosen = [name for name in args.only.split(",") if name]
    with tempfile.TemporaryDirectory(prefix="segmentd-hardening-") as tmp:
        for name in chosen:
            args.database_url = f"sqlite:///{tmp}/{name}.db"
            server = start_segmentd(args.database_url, workers=1, logdir=Path(tmp))
            try:
                SCENARIOS[name](server, args)
            finally:
                stop(server)


if __name__ == "__main__":
    main()
