"""Bulk rows for the growth benchmark: segments, networks, agents, straight into SQL.

Not through the API (a million creates would take hours): executemany of
pre-rendered tuples on SQLite, COPY on PostgreSQL, one transaction per
table and step, secondary indexes dropped and rebuilt around it.  The layout:

* one segment in four is VLAN, spread round-robin over ``physnets``
  physical networks (``pn000``...) sized so the largest run fills each to
  4,000 of its 4,094 IDs; the rest are VXLAN, numbered densely upwards
  with ``HOLES`` free VNIs left at random in every block added, so the
  configured VNI range (1 to the top) is nearly full at every size;
* ten segments per network;
* hosts report one physnet each (host ``i`` -> ``pn{i % physnets}``), four
  in five as Open vSwitch agents, the rest as Linux bridge agents.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table

from segmentd.db.models import Agent, AgentPhysnet, Network, Segment

VLAN_PER_PHYSNET = 4000
VLAN_SHARE = 4  # one segment in VLAN_SHARE is VLAN
SEGMENTS_PER_NETWORK = 10
HOLES = 100
CHUNK = 20_000
OVS, LINUXBRIDGE = "Open vSwitch agent", "Linux bridge agent"
PROJECT = "growth"


def new_id(rng: random.Random) -> str:
    # uuid4's urandom call per id is a third of the fill time at 1M rows.
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def physnets_for(largest: int) -> int:
    return max(1, math.ceil(largest / VLAN_SHARE / VLAN_PER_PHYSNET))


def physnet(k: int) -> str:
    return f"pn{k:03d}"


def host_name(i: int) -> str:
    return f"host-{i:06d}"


@dataclass
class Layout:
    """What is in the database so far."""

    physnets: int
    segments: int = 0
    vlan: int = 0
    vni_top: int = 0  # VNIs 1..vni_top form the configured, nearly full range
    hosts: int = 0

    def vlan_ranges(self) -> str:
        return ",".join(f"{physnet(k)}:1:4094" for k in range(self.physnets))


class Loader:
    """Appends rows to tables on one engine, as fast as the driver allows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.now = self._bound(Segment.__table__, "created_at", now)
        self.true = self._bound(Network.__table__, "admin_state_up", True)
        self.false = self._bound(Network.__table__, "shared", False)

    def _bound(self, table: Any, column: str, value: object) -> object:
        """The value as the driver receives it (SQLite stores text and ints)."""
        if self.pg:
            return value
        dialect = self.engine.dialect
        processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        return processor(value) if processor else value

    def json(self, value: object) -> object:
        return json.dumps(value)

    def append(self, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            # Secondary indexes are rebuilt once after the load (a sort) rather
            # than updated row by row (random B-tree inserts): minutes saved at 1M.
            indexes = self._indexes(cursor, table.name)
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            if not self.pg:
                cursor.execute("PRAGMA cache_size=-262144")  # 256 MB for this connection
            for chunk in _chunks(rows, CHUNK):
                if self.pg:
                    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                        for row in chunk:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(columns))
                    insert = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 - our names
                    cursor.executemany(insert, chunk)
            for _, ddl in indexes:
                cursor.execute(ddl)
            raw.commit()
        finally:
            raw.close()

    def _indexes(self, cursor: Any, table: str) -> list[tuple[str, str]]:
        """(name, DDL) of the table's indexes that no constraint owns."""
        if self.pg:
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                "WHERE t.relname = %s AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
                (table,),
            )
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            )
        return [(name, ddl) for name, ddl in cursor.fetchall()]


def _chunks(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


SEGMENT_COLUMNS = (
    "id",
    "network_id",
    "network_type",
    "physical_network",
    "segmentation_id",
    "segment_index",
    "description",
    "created_at",
    "updated_at",
    "revision_number",
)
NETWORK_COLUMNS = (
    "id",
    "project_id",
    "name",
    "admin_state_up",
    "shared",
    "status",
    "mtu",
    "description",
    "created_at",
    "updated_at",
    "revision_number",
)


def grow_segments(loader: Loader, layout: Layout, target: int, rng: random.Random) -> None:
    """Add segments (and their networks) until ``target`` exist."""
    new = target - layout.segments
    if new <= 0:
        return
    new_vlan = target // VLAN_SHARE - layout.vlan
    new_vxlan = new - new_vlan
    block = list(range(layout.vni_top + 1, layout.vni_top + new_vxlan + HOLES + 1))
    for hole in sorted(rng.sample(range(len(block)), HOLES), reverse=True):
        del block[hole]
    kinds: list[tuple[str, str | None, int]] = []
    for g in range(layout.vlan, layout.vlan + new_vlan):
        kinds.append(("vlan", physnet(g % layout.physnets), g // layout.physnets + 1))
    kinds += [("vxlan", None, vni) for vni in block]
    rng.shuffle(kinds)
    networks = [new_id(rng) for _ in range(math.ceil(new / SEGMENTS_PER_NETWORK))]
    loader.append(
        Network.__table__,  # type: ignore[arg-type]
        NETWORK_COLUMNS,
        (
            (
                n,
                PROJECT,
                f"g-{i}",
                loader.true,
                loader.false,
                "ACTIVE",
                1500,
                "",
                loader.now,
                loader.now,
                1,
            )
            for i, n in enumerate(networks)
        ),
    )
    loader.append(
        Segment.__table__,  # type: ignore[arg-type]
        SEGMENT_COLUMNS,
        (
            (
                new_id(rng),
                networks[i // SEGMENTS_PER_NETWORK],
                kind,
                net,
                seg_id,
                i % SEGMENTS_PER_NETWORK,
                "",
                loader.now,
                loader.now,
                1,
            )
            for i, (kind, net, seg_id) in enumerate(kinds)
        ),
    )
    layout.segments, layout.vlan = target, layout.vlan + new_vlan
    layout.vni_top += new_vxlan + HOLES


AGENT_COLUMNS = (
    "id",
    "host",
    "agent_type",
    "binary",
    "topic",
    "configurations",
    "config_hash",
    "admin_state_up",
    "description",
    "heartbeat_timestamp",
    "started_at",
    "created_at",
)


def grow_hosts(loader: Loader, layout: Layout, target: int, rng: random.Random) -> None:
    """Add hosts, one agent and one reported physnet each, until ``target`` exist."""
    if target <= layout.hosts:
        return
    agents = []
    for i in range(layout.hosts, target):
        kind = LINUXBRIDGE if i % 5 == 4 else OVS
        key = "interface_mappings" if kind == LINUXBRIDGE else "bridge_mappings"
        net = physnet(i % layout.physnets)
        agents.append((new_id(rng), host_name(i), kind, net, {key: {net: "br-ex"}}))
    loader.append(
        Agent.__table__,  # type: ignore[arg-type]
        AGENT_COLUMNS,
        (
            (
                a,
                host,
                kind,
                "neutron-agent",
                "N/A",
                loader.json(conf),
                "0" * 64,
                loader.true,
                "",
                loader.now,
                loader.now,
                loader.now,
            )
            for a, host, kind, _, conf in agents
        ),
    )
    loader.append(
        AgentPhysnet.__table__,  # type: ignore[arg-type]
        ("agent_id", "physical_network", "host", "agent_type"),
        ((a, net, host, kind) for a, host, kind, net, _ in agents),
    )
    layout.hosts = target
