"""``segmentd events``: run once, status, replay; one worker per SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from segmentd.db.events import Event
from tests.client import Api
from tests.events.receiver import SECRET, receiving
from tests.test_cli import segmentd


def test_once_status_and_replay(
    api: Api, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    net = api.create_network(name="n")
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "m"}})
    with receiving() as receiver:
        sinks = [
            {
                "type": "webhook",
                "name": "hook",
                "url": receiver.url,
                "secrets": [SECRET],
                "allow_private": True,
            }
        ]
        env = {"SEGMENTD_DATABASE_URL": database_url, "SEGMENTD_EVENT_SINKS": json.dumps(sinks)}
        done = segmentd(tmp_path, env, "events", "--once")
        assert done.returncode == 0, done.stderr
        assert "delivering to hook" in done.stdout
        assert [e["action"] for e in receiver.received] == ["create", "update"]

        status = segmentd(tmp_path, env, "events", "status", "-f", "json")
        assert status.returncode == 0, status.stderr
        shown = {row["name"]: row["value"] for row in json.loads(status.stdout)}
        assert shown["pending"] == 0 and shown["dead"] == 0
        assert shown["hook.deliveries"] == 2 and shown["hook.failures"] == 0

        with engine.begin() as conn:
            second = conn.execute(select(Event.seq).order_by(Event.seq)).all()[1][0]
            conn.execute(update(Event).where(Event.seq == second).values(state="dead"))
        replay = segmentd(tmp_path, env, "events", "replay", "--since", str(second))
        assert replay.returncode == 0, replay.stderr
        assert replay.stdout.strip() == "1 events pending again"
        assert segmentd(tmp_path, env, "events", "--once").returncode == 0
        assert [e["action"] for e in receiver.received] == ["create", "update", "update"]
        bad = segmentd(tmp_path, env, "events", "replay", "--since", "yesterday")
        assert bad.returncode == 2 and "not an event number or a time" in bad.stderr


def test_one_worker_per_sqlite_database(
    database_url: str, tmp_path: Path, is_postgres: bool
) -> None:
    if is_postgres:
        pytest.skip("several workers at once are the point on PostgreSQL")
    env = {"SEGMENTD_DATABASE_URL": database_url}
    first = subprocess.Popen(
        [*_cli(), "events"],
        env=_env(tmp_path, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert "delivering to none" in first.stdout.readline()
        second = segmentd(tmp_path, env, "events")
        assert second.returncode == 1
        assert "another delivery worker runs on" in second.stderr
    finally:
        first.terminate()
        first.communicate(timeout=30)
    assert first.returncode == 0


def _cli() -> list[str]:
    return [sys.executable, "-m", "segmentd.cli"]


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")}
    return {**clean, "SEGMENTD_CONFIG_FILE": str(tmp_path / "absent.toml"), **extra}
