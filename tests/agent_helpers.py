"""Helpers shared by the agent and host-mapping tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select

from segmentd.db import snapshot
from segmentd.db.models import AgentPhysnet, Segment
from tests.client import Api

OVS = "Open vSwitch agent"
LB = "Linux bridge agent"
SRIOV = "NIC Switch agent"


def ovs(host: str, *physnets: str, **extra: Any) -> dict[str, Any]:
    mappings = {p: f"br-{i}" for i, p in enumerate(physnets)}
    return {
        "host": host,
        "agent_type": OVS,
        "binary": "neutron-openvswitch-agent",
        "configurations": {"bridge_mappings": mappings},
        **extra,
    }


def report(api: Api, agent: dict[str, Any]) -> dict[str, Any]:
    resp = api.post("/v2.0/agents/report", {"agent": agent})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()["agent"]
    return body


def mappings(engine: Engine) -> set[tuple[str, str]]:
    """(segment id, host) pairs the reports imply, computed independently of
    the service's queries (every agent type serves flat and VLAN segments)."""
    ap = AgentPhysnet
    stmt = select(Segment.id, ap.host).join(
        Segment, Segment.physical_network == ap.physical_network
    )
    with engine.connect() as conn:
        return {(r[0], r[1]) for r in conn.execute(stmt)}


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement.strip())

    @property
    def reads(self) -> list[str]:
        return [s for s in self.statements if s.upper().startswith("SELECT")]

    @property
    def writes(self) -> list[str]:
        verbs = ("INSERT", "UPDATE", "DELETE", "REPLACE")
        return [s for s in self.statements if s.upper().startswith(verbs)]


@contextmanager
def count_statements(engine: Engine) -> Iterator[StatementCounter]:
    """The statements run on ``engine``'s connections: through SQLAlchemy,
    and the prepared reads run on the DB-API connection (``db.snapshot``),
    which SQLAlchemy's events do not see."""
    counter = StatementCounter()
    real_rows = snapshot.Snapshot.rows

    def rows(self: snapshot.Snapshot, query: snapshot.PreparedRead, params: Any) -> Any:
        counter.statements.append(query.compiled(engine.dialect).sql.strip())
        return real_rows(self, query, params)

    event.listen(engine, "before_cursor_execute", counter)
    snapshot.Snapshot.rows = rows  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        snapshot.Snapshot.rows = real_rows  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", counter)
