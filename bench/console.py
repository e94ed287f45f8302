"""Console pages at scale: ``python -m bench.console [--segments N] [--hosts N] [--db all]``.

The database is filled with ``--segments`` segments (their networks, one in
ten; a quarter VLAN on one physnet, the rest VXLAN: ``bench/growth_data.py``),
``--hosts`` hosts (one agent and one reported physnet each) and as many
audit events; then every console page is requested by a logged-in admin,
in process, and timed server-side: from the request's arrival at the app to
its last body byte (an ASGI wrapper around the whole app, middleware
included; no network, no client parsing).  The statements each page runs
are counted too.  Target: every page under 200 ms.  Results:
``bench/RESULTS-console.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, select, text

from bench import growth_data as data
from bench.report import commit, cpu_model, load_average
from segmentd.config import Settings
from segmentd.db import migrate
from segmentd.db.audit import AuditEvent
from segmentd.db.base import utcnow
from segmentd.db.models import Network, Segment
from segmentd.identity import store
from segmentd.main import build_runtime, create_app

RESULTS = Path(__file__).with_name("RESULTS-console.md")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1/console_bench"
TARGET_MS = 200.0
PASSWORD = "bench-password-console"  # noqa: S105 - a benchmark user's password


class Timed:
    """ASGI wrapper: server-side time of each request, arrival to last byte,
    on the wall clock and on the process's CPU clock (every thread: the
    handler's, the event loop's, and the in-process client's, idle meanwhile)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_ms = 0.0
        self.last_cpu_ms = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start, cpu = time.perf_counter(), time.process_time()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - start) * 1000
                self.last_cpu_ms = (time.process_time() - cpu) * 1000

        await self.app(scope, receive, timed_send)


@dataclass
class Row:
    page: str
    cpu_ms: float
    median_ms: float
    p95_ms: float
    max_ms: float
    kib: float
    statements: int


def fill(url: str, segments: int, hosts: int, events: int) -> data.Layout:
    engine = create_engine(url)
    try:
        loader = data.Loader(engine)
        layout = data.Layout(physnets=data.physnets_for(segments))
        rng = random.Random(22)
        data.grow_segments(loader, layout, segments, rng)
        data.grow_hosts(loader, layout, hosts, rng)
        now = dt.datetime.now(dt.UTC)
        rows = (
            (
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                loader._bound(AuditEvent.__table__, "created_at", now - dt.timedelta(seconds=i)),
                f"req-{i}",
                "bench-user",
                data.PROJECT,
                "create" if i % 10 else "deny",
                "network",
                str(uuid.UUID(int=i, version=4)),
                "create_network",
                "",
            )
            for i in range(events)
        )
        # Every column but the before/after snapshots (denials have none).
        columns = tuple(
            c.name for c in AuditEvent.__table__.columns if c.name not in ("before", "after")
        )
        loader.append(AuditEvent.__table__, columns, rows)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    return layout


def settings_for(url: str, layout: data.Layout) -> Settings:
    return Settings(
        database_url=url,
        environment="test",
        auth_strategy="token",
        network_vlan_ranges=layout.vlan_ranges(),
        vni_ranges=f"1:{max(layout.vni_top, 1)}",
        password_time_cost=1,
        password_memory_kib=64,
        password_parallelism=1,
        ratelimit_enabled=False,
    )


def measure(url: str, layout: data.Layout, rounds: int) -> list[Row]:
    rt = build_runtime(settings_for(url, layout))
    try:
        with rt.db.transaction(write=True) as session:
            project = store.create_project(session, "admin")
            user = store.create_user(session, rt.passwords, "root", PASSWORD, project)
            store.add_role(session, user, project, "admin")
            network = session.scalars(select(Network.id).limit(1)).one()
            vlan = session.scalars(
                select(Segment.id).where(Segment.network_type == "vlan").limit(1)
            ).one()
        timed = Timed(create_app(runtime=rt))
        client = TestClient(timed, base_url="http://bench")
        login = client.get("/ui/login")
        token = login.text.split('name="csrf" value="')[1].split('"')[0]
        answer = client.post(
            "/ui/login",
            data={"csrf": token, "username": "root", "password": PASSWORD, "next": "/ui/"},
            headers={"Origin": "http://bench"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        pages = [
            ("overview", "/ui/"),
            ("pools", "/ui/pools"),
            ("networks", "/ui/networks"),
            ("networks, filtered", "/ui/networks?name=g-500"),
            ("network", f"/ui/networks/{network}"),
            ("segments", "/ui/segments"),
            ("segments, VLAN", "/ui/segments?network_type=vlan"),
            ("segment (hosts mapped)", f"/ui/segments/{vlan}"),
            ("ranges", "/ui/ranges"),
            ("hosts", "/ui/hosts"),
            ("host", f"/ui/hosts/{data.host_name(1)}"),
            ("agents", "/ui/agents"),
            ("audit", "/ui/audit"),
            ("audit, denials", "/ui/audit?outcome=denied"),
            ("network form", "/ui/networks/new"),
        ]
        rows = []
        for name, path in pages:
            for _ in range(2):  # warm: compiled statements, templates, caches
                assert client.get(path).status_code == 200, path
            times, cpu = [], []
            for _ in range(rounds):
                response = client.get(path)
                times.append(timed.last_ms)
                cpu.append(timed.last_cpu_ms)
            with counting() as seen:
                client.get(path)
            times.sort()
            rows.append(
                Row(
                    name,
                    statistics.median(cpu),
                    statistics.median(times),
                    times[min(len(times) - 1, int(len(times) * 0.95))],
                    times[-1],
                    len(response.content) / 1024,
                    len(seen),
                )
            )
        return rows
    finally:
        rt.close()


@contextmanager
def counting() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    # On the Engine class: once per statement, whichever pool runs it.
    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def fresh_postgres(url: str) -> str | None:
    base = url.rsplit("/", 1)[0] + "/postgres"
    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('DROP DATABASE IF EXISTS "console_bench" WITH (FORCE)'))
            conn.execute(text('CREATE DATABASE "console_bench"'))
        admin.dispose()
    except Exception:  # no server: the run says so
        return None
    return url


def table(rows: list[Row]) -> str:
    lines = [
        "| page | CPU ms (median) | median ms | p95 ms | max ms | KiB | SQL statements |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        flag = "" if r.p95_ms < TARGET_MS else " **over target**"
        lines.append(
            f"| {r.page}{flag} | {r.cpu_ms:.1f} | {r.median_ms:.1f} | {r.p95_ms:.1f} | {r.max_ms:.1f} "
            f"| {r.kib:.0f} | {r.statements} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    p.add_argument("--segments", type=int, default=10_000)
    p.add_argument("--hosts", type=int, default=10_000)
    p.add_argument("--events", type=int, default=10_000, help="audit events")
    p.add_argument("--rounds", type=int, default=50, help="measured requests per page")
    p.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, str | None]] = []
        if args.db in ("sqlite", "all"):
            backends.append(("SQLite", f"sqlite:///{tmp}/console.db"))
        if args.db in ("postgresql", "all"):
            backends.append(("PostgreSQL", fresh_postgres(args.pg_url)))
        for label, url in backends:
            if url is None:
                sections.append(f"### {label}\n\nnot measured: no server at {args.pg_url}\n")
                continue
            migrate.upgrade(url)
            started = time.perf_counter()
            layout = fill(url, args.segments, args.hosts, args.events)
            filled = time.perf_counter() - started
            rows = measure(url, layout, args.rounds)
            worst = max(r.p95_ms for r in rows)
            verdict = "every page under" if worst < TARGET_MS else "NOT every page under"
            sections.append(
                f"### {label}\n\n{table(rows)}\n\nSlowest p95: {worst:.1f} ms ({verdict} "
                f"{TARGET_MS:.0f} ms). Filled in {filled:.1f} s.\n"
            )
            print(sections[-1])
    header = (
        f"## {utcnow():%Y-%m-%d %H:%M} UTC, commit {commit()}\n\n"
        f"{args.segments:,} segments ({args.segments // data.SEGMENTS_PER_NETWORK:,} networks), "
        f"{args.hosts:,} hosts (one agent each), {args.events:,} audit events; "
        f"{args.rounds} requests per page after 2 warm-up requests, one logged-in admin, "
        f"in process. CPU: {cpu_model()}; load before: {load_average()}.\n"
    )
    intro = (
        "# Console render times\n\n"
        "`python -m bench.console` (see its docstring): server-side time per console page, "
        "from the request's arrival at the app to its last byte, with the database filled "
        "(wall clock: median, p95, max; and the process's CPU time, the figure that moves "
        "least on a shared machine). Target: every page under 200 ms. Newest run first.\n\n"
    )
    previous = ""
    if args.results.exists():  # earlier runs stay below this one
        text_before = args.results.read_text()
        previous = text_before[text_before.index("\n## ") + 1 :] if "\n## " in text_before else ""
    args.results.write_text(intro + header + "\n" + "\n".join(sections) + "\n" + previous)


if __name__ == "__main__":
    main()
