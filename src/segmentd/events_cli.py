"""``segmentd events``: run a delivery worker, replay events, show the backlog."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
from typing import Any

from segmentd.cli_output import add_format_option, render
from segmentd.config import load_settings
from segmentd.db.base import Database
from segmentd.services import events


def _database() -> tuple[Any, Database]:
    settings = load_settings()
    db = Database.open(
        settings.database_url, settings.db_statement_timeout_ms, settings.sqlite_busy_timeout_ms
    )
    return settings, db


def _run(args: argparse.Namespace) -> int:
    from segmentd.delivery.worker import Worker, WorkerBusy, single_worker

    logging.basicConfig(
        level=getattr(logging, (args.log_level or "info").upper()),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    settings, db = _database()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with single_worker(settings):
            worker = Worker(settings, db)
            names = ", ".join(s.name for s in worker.sinks) or "none"
            print(f"segmentd events: delivering to {names}", flush=True)
            try:
                worker.run(stop, once=args.once)
            finally:
                worker.close()
    except WorkerBusy as exc:
        print(f"segmentd events: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


def parse_since(value: str) -> tuple[dt.datetime | None, int | None]:
    """An event number (``1234``) or an ISO 8601 time (UTC unless it says)."""
    if value.isdigit():
        return None, int(value)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an event number or a time: {value!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), None


def _replay(args: argparse.Namespace) -> int:
    since, since_seq = args.since
    _, db = _database()
    try:
        with db.transaction(write=True) as session:
            count = events.replay(session, since, since_seq)
    finally:
        db.dispose()
    print(f"{count} events pending again")
    return 0


def _status(args: argparse.Namespace) -> int:
    _, db = _database()
    try:
        with db.transaction(write=False) as session:
            backlog = events.backlog(session)
            sinks = events.sink_counters(session)
    finally:
        db.dispose()
    rows: list[dict[str, object]] = [
        {"name": "pending", "value": backlog.pending},
        {"name": "dead", "value": backlog.dead},
        {"name": "oldest_pending_age_seconds", "value": round(backlog.oldest_pending_age_s, 1)},
    ]
    for name, delivered, failed in sinks:
        rows.append({"name": f"{name}.deliveries", "value": delivered})
        rows.append({"name": f"{name}.failures", "value": failed})
    print(render(rows, ("name", "value"), args.format))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = sub.add_parser(
        "events", help="change events: run a delivery worker (default), replay, status"
    )
    top.add_argument("--once", action="store_true", help="stop when nothing is due")
    top.add_argument(
        "--log-level", default=None, choices=["critical", "error", "warning", "info", "debug"]
    )
    top.set_defaults(func=_run)
    commands = top.add_subparsers(dest="events_command", required=False)
    run = commands.add_parser("run", help="deliver events to the configured sinks (a loop)")
    run.add_argument("--once", action="store_true", help="stop when nothing is due")
    run.add_argument(
        "--log-level", default=None, choices=["critical", "error", "warning", "info", "debug"]
    )
    run.set_defaults(func=_run)
    replay = commands.add_parser(
        "replay", help="send retained events again (delivered or dead), to every sink"
    )
    replay.add_argument(
        "--since",
        required=True,
        type=parse_since,
        help="an event number (seq) or an ISO 8601 time, e.g. 2026-12-04T10:00:00Z",
    )
    replay.set_defaults(func=_replay)
    status = commands.add_parser("status", help="pending and dead events, per-sink counters")
    add_format_option(status)
    status.set_defaults(func=_status)
