"""Kill -9 of the delivery worker and of a ``serve`` worker in a burst of writes.

A three-way check afterwards, against the database: every committed change
(its audit event, written in the same transaction, says it committed) has
exactly one change event and no change event lacks its committed change;
every acknowledged (2xx) request has its event; and once the restarted
worker catches up, every event was delivered to the webhook, in order per
resource, duplicates only as repeats of the same event id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil
import pytest
from sqlalchemy import Engine, select

from segmentd.db.audit import AuditEvent
from segmentd.db.events import Event
from tests.client import Api
from tests.events.receiver import SECRET, Receiver, receiving
from tests.server import running_server_process

pytestmark = pytest.mark.slow

THREADS = 4
RUN_SECONDS = 6.0


def _env(database_url: str, receiver: Receiver) -> dict[str, str]:
    sinks = [
        {
            "type": "webhook",
            "name": "hook",
            "url": receiver.url,
            "secrets": [SECRET],
            "allow_private": True,
            "timeout_seconds": 0.5,
        }
    ]
    return {
        "SEGMENTD_EVENT_SINKS": json.dumps(sinks),
        "SEGMENTD_EVENTS_RETRY_BASE_SECONDS": "0.05",
        "SEGMENTD_EVENTS_RETRY_MAX_SECONDS": "0.5",
        "SEGMENTD_EVENTS_LEASE_SECONDS": "2",
        "SEGMENTD_EVENTS_POLL_SECONDS": "0.05",
        "SEGMENTD_EVENTS_BATCH_SIZE": "20",
    }


def _events_worker(database_url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {
        **os.environ,
        "SEGMENTD_DATABASE_URL": database_url,
        "SEGMENTD_ENVIRONMENT": "test",
        **env,
    }
    with open(log, "ab") as out:  # the child has its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "segmentd.cli", "events"], env=full, stdout=out, stderr=out
        )


def _serve_workers(server: psutil.Process) -> list[int]:
    found = []
    for child in server.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and any(
                "spawn_main" in part for part in child.cmdline()
            ):
                found.append(child.pid)
        except psutil.Error:
            continue  # just killed
    return found


def _drive(base: str, tid: int, stop: threading.Event, acked: list[str]) -> None:
    with Api.for_url(base) as api:
        _writes(api, tid, stop, acked)


def _writes(api: Api, tid: int, stop: threading.Event, acked: list[str]) -> None:
    mine: list[str] = []
    step = 0
    while not stop.is_set():
        step += 1
        try:
            if step % 3 == 1 or not mine:
                resp = api.post("/v2.0/networks", {"network": {"name": f"t{tid}-{step}"}})
                if resp.status_code == 201:
                    mine.append(resp.json()["network"]["id"])
            else:
                net = mine[step % len(mine)]
                resp = api.put(f"/v2.0/networks/{net}", {"network": {"name": f"r{tid}-{step}"}})
        except httpx.TransportError:
            continue  # cut off by the kill: no known outcome
        if resp.status_code < 300:
            acked.append(resp.headers["X-Openstack-Request-Id"])


def test_kill_9_of_delivery_and_serve_workers_loses_and_invents_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    with receiving() as receiver:
        env = _env(database_url, receiver)
        log = tmp_path / "events.log"
        with running_server_process(database_url, workers=2, env=env) as (base, proc):
            server = psutil.Process(proc.pid)
            worker = _events_worker(database_url, env, log)
            stop = threading.Event()
            acked: list[list[str]] = [[] for _ in range(THREADS)]
            threads = [
                threading.Thread(target=_drive, args=(base, i, stop, acked[i]))
                for i in range(THREADS)
            ]
            for t in threads:
                t.start()
            time.sleep(RUN_SECONDS * 0.25)
            _wait_for(lambda: len(receiver.received) >= 5, "the first deliveries")
            worker.send_signal(signal.SIGKILL)  # mid-delivery
            worker.wait()
            receiver.mode = "fail"  # and the receiver fails for a while
            time.sleep(RUN_SECONDS * 0.25)
            victims = _serve_workers(server)
            assert victims, "no serve worker found"
            os.kill(victims[0], signal.SIGKILL)  # mid-request
            worker = _events_worker(database_url, env, log)
            time.sleep(RUN_SECONDS * 0.25)
            receiver.mode = "ok"
            time.sleep(RUN_SECONDS * 0.25)
            stop.set()
            for t in threads:
                t.join(30)
            try:
                _wait_delivered(engine, timeout=60)
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
    acknowledged = [rid for per_thread in acked for rid in per_thread]
    assert len(acknowledged) > 20

    with engine.connect() as conn:
        audited = Counter(
            (a.request_id, a.resource_type, a.resource_id, a.action)
            for a in conn.execute(select(AuditEvent).where(AuditEvent.action != "deny"))
        )
        found = list(conn.execute(select(Event).order_by(Event.seq)))
    recorded = Counter((e.request_id, e.resource_type, e.resource_id, e.action) for e in found)
    # Exactly one event per committed change, none for anything else.
    assert recorded == audited
    assert set(recorded.values()) == {1}
    assert set(acknowledged) <= {e.request_id for e in found}
    assert {e.state for e in found} == {"delivered"}
    # Every event reached the receiver; first arrivals in order per resource.
    arrived = receiver.unique()
    assert {e["id"] for e in arrived} == {e.id for e in found}
    by_resource: dict[str, list[int]] = {}
    for event in arrived:
        by_resource.setdefault(event["resource_id"], []).append(event["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_resource.values())
    assert log.read_text().count("delivering to hook") == 2


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _wait_delivered(engine: Engine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    left: Any = None
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            left = conn.execute(select(Event.seq).where(Event.state != "delivered")).all()
        if not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"{len(left)} events still undelivered")


def test_delivery_inside_serve_survives_a_killed_worker(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    with receiving() as receiver:
        env = {**_env(database_url, receiver), "SEGMENTD_EVENTS_IN_SERVE": "true"}
        with running_server_process(database_url, workers=2, env=env) as (base, proc):
            server = psutil.Process(proc.pid)
            with Api.for_url(base) as api:
                for i in range(5):
                    api.create_network(name=f"before-{i}")
                _wait_for(lambda: len(receiver.unique()) >= 5, "deliveries from serve")
                for pid in _serve_workers(server):
                    os.kill(pid, signal.SIGKILL)  # the delivering one among them
                _wait_for(lambda: len(_serve_workers(server)) == 2, "replacement workers")
                created = 0
                deadline = time.monotonic() + 30
                while created < 5 and time.monotonic() < deadline:
                    try:
                        api.create_network(name=f"after-{created}")
                        created += 1
                    except (httpx.TransportError, AssertionError):
                        time.sleep(0.2)  # the replacements are still starting
                _wait_delivered(engine, timeout=60)
    with engine.connect() as conn:
        ids = {e.id for e in conn.execute(select(Event))}
    assert len(ids) == 10
    assert {e["id"] for e in receiver.unique()} == ids
