"""The benchmarked operations and the targets they are held to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    label: str
    expected_status: int
    # Minimum throughput as a fraction of the floor (DESIGN.md targets).
    floor_target: float = 0.0
    is_read: bool = False


# The standard run (``python -m bench``): six operations, timed phases.
OPS: tuple[Op, ...] = (
    Op("network_create", "create network", 201, 0.33),
    Op("segment_create", "create segment (allocated ID)", 201, 0.33),
    Op("segment_get", "get segment", 200, 0.5, True),
    Op("segment_list", "list segments, page of 100", 200, 0.5, True),
    Op("segment_update", "update segment name", 200, 0.33),
    Op("segment_delete", "delete segment", 204, 0.33),
)

# The wire workload (``--incumbent``, ``--baseline-ref``): the eight
# operations of the incumbent's own bench_api.py, with its request bodies.
WIRE_OPS: tuple[Op, ...] = (
    Op("network_create_vlan", "create network (VLAN provider)", 201),
    Op("segment_create_vlan", "create segment, ID allocated", 201),
    Op("segment_create_explicit", "create segment, explicit ID", 201),
    Op("segment_list", "list segments, page of 100", 200, is_read=True),
    Op("segment_get", "get one segment", 200, is_read=True),
    Op("segment_update", "update segment name", 200),
    Op("segment_delete", "delete segment", 204),
    Op("network_delete", "delete network", 204),
)
# The standard run's labels win where both workloads share an operation.
BY_NAME = {op.name: op for op in WIRE_OPS + OPS}

RSS_TARGET_MB = 150
READ_P99_TARGET_MS = 50
READ_P99_TARGET_CLIENTS = 16
INCUMBENT_FACTOR_TARGET = 10
