"""Orchestration: servers per configuration, phases in order, rows out."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, replace
from pathlib import Path

from bench import server
from bench.client import FAKE_ID, Phase, PhaseResult, serve
from bench.ops import BY_NAME, OPS
from bench.report import Row

# (workers, concurrent clients): the baseline, then concurrency, then 2 workers.
CONFIGS = ((1, 1), (1, 16), (2, 16))


@dataclass(frozen=True)
class Plan:
    duration: float
    warmup: float
    list_pool: int  # segments present before reads, so a list walks several pages
    dbs: tuple[str, ...]
    pg_url: str
    workdir: Path


class Client:
    """The load-generator process (spawned, so it shares nothing with us)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(child,), daemon=True)
        self._proc.start()

    def run(self, phase: Phase) -> PhaseResult:
        self._conn.send(phase)
        result: PhaseResult = self._conn.recv()
        return result

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(timeout=10)


def _database_url(db: str, plan: Plan, workers: int, clients: int) -> str | None:
    if db == "sqlite":
        path = plan.workdir / f"bench-w{workers}-c{clients}.db"
        return f"sqlite:///{path}"
    return server.fresh_postgres(plan.pg_url)


class ServiceRun:
    """All six operations against one fresh segmentd, in dependency order."""

    def __init__(
        self, client: Client, srv: server.Server, plan: Plan, db: str, clients: int, workers: int
    ) -> None:
        self.client, self.srv, self.plan = client, srv, plan
        self.db, self.clients, self.workers = db, clients, workers
        self.rows: list[Row] = []
        self.sizes: dict[str, float] = {}
        self.networks: list[str] = []
        self.segments: list[str] = []

    def _phase(self, op: str, **kwargs: object) -> Phase:
        base = Phase(
            op,
            self.srv.port,
            self.clients,
            self.plan.duration,
            self.plan.warmup,
            network_ids=self.networks,
            segment_ids=self.segments,
        )
        return replace(base, **kwargs)  # type: ignore[arg-type]

    def measure(self, op: str) -> PhaseResult:
        cpu_before = server.cpu_seconds(self.srv.pid)
        result = self.client.run(self._phase(op))
        cpu = server.cpu_seconds(self.srv.pid) - cpu_before
        total, largest = server.rss_mb(self.srv.pid)
        row = Row(
            self.db,
            self.workers,
            self.clients,
            BY_NAME[op],
            result.latencies_ns,
            result.elapsed,
            result.errors,
            result.client_cpu,
            total,
            largest,
            server_cpu_ms=1000 * cpu / max(result.completed, 1),
        )
        self.rows.append(row)
        self.sizes[op] = result.mean_body
        note = f" first error {result.first_error}" if result.errors else ""
        print(
            f"  {self.db} w{self.workers} c{self.clients} {op:15} {row.rps:8.0f} req/s "
            f"p50 {row.percentile_ms(0.5):7.2f} ms p99 {row.percentile_ms(0.99):7.2f} ms "
            f"server cpu {row.server_cpu_ms:.2f} ms/req rss {total:.0f} MB "
            f"client cpu {result.client_cpu:.0%}{note}",
            flush=True,
        )
        return result

    def top_up(self, target: int) -> None:
        """Create segments (untimed) until at least ``target`` exist."""
        missing = target - len(self.segments)
        if missing > 0:
            result = self.client.run(
                self._phase("segment_create", max_requests=missing, warmup=0.0)
            )
            self.segments = self.segments + result.created_ids

    def run(self) -> None:
        self.networks = self.measure("network_create").created_ids
        self.segments = self.measure("segment_create").created_ids
        self.top_up(self.plan.list_pool)
        for op in ("segment_get", "segment_list"):
            self.measure(op)
        update_rate = self.measure("segment_update").latencies_ns
        # Deletes consume segments: have enough for the whole timed window
        # (deletes run at about the rate of updates, the same row write).
        rate = len(update_rate) / self.plan.duration
        self.top_up(int(rate * 1.5 * (self.plan.duration + self.plan.warmup)) + 100)
        self.measure("segment_delete")


def _run_service(
    client: Client, plan: Plan, db: str, workers: int, clients: int
) -> ServiceRun | None:
    url = _database_url(db, plan, workers, clients)
    if url is None:
        return None
    srv = server.start_segmentd(url, workers, plan.workdir)
    try:
        run = ServiceRun(client, srv, plan, db, clients, workers)
        run.run()
        return run
    finally:
        server.stop(srv)


FLOORS = {"floor": "bench.floor:app", "fastapi": "bench.framework_floor:app"}


def _floor(
    client: Client, plan: Plan, workers: int, clients: int, sizes: dict[str, float], name: str
) -> dict[str, float]:
    """Floor req/s per operation: same method, body and response size."""
    srv = server.start_floor(workers, plan.workdir, FLOORS[name])
    out = {}
    try:
        for op in OPS:
            phase = Phase(
                op.name,
                srv.port,
                clients,
                plan.duration,
                plan.warmup,
                network_ids=[FAKE_ID],
                segment_ids=[FAKE_ID],
                floor_size=round(sizes.get(op.name, 0)),
            )
            cpu_before = server.cpu_seconds(srv.pid)
            result = client.run(phase)
            cpu_ms = 1000 * (server.cpu_seconds(srv.pid) - cpu_before) / max(result.completed, 1)
            out[op.name] = len(result.latencies_ns) / result.elapsed
            print(
                f"  {name} w{workers} c{clients} {op.name:15} {out[op.name]:8.0f} req/s "
                f"({phase.floor_size} B) server cpu {cpu_ms:.3f} ms/req "
                f"client cpu {result.client_cpu:.0%}",
                flush=True,
            )
    finally:
        server.stop(srv)
    return out


def run_all(plan: Plan) -> tuple[list[Row], list[str]]:
    """Every configuration; returns the rows and the DB kinds actually run."""
    client = Client()
    rows: list[Row] = []
    ran: list[str] = []
    try:
        for workers, clients in CONFIGS:
            runs = [r for db in plan.dbs if (r := _run_service(client, plan, db, workers, clients))]
            if not runs:
                continue
            sizes = runs[0].sizes
            floor = _floor(client, plan, workers, clients, sizes, "floor")
            framework = _floor(client, plan, workers, clients, sizes, "fastapi")
            for run in runs:
                for row in run.rows:
                    row.floor_rps = floor[row.op.name]
                    row.framework_rps = framework[row.op.name]
                rows.extend(run.rows)
                ran += [run.db] if run.db not in ran else []
    finally:
        client.close()
    return rows, ran
