"""The wire workload: the same requests to several servers, phase by phase.

Used by ``--incumbent`` (segmentd beside Neutron 29) and ``--baseline-ref``
(segmentd beside segmentd built from another git ref).  A round is the
incumbent's ``bench_api.py`` sequence with fixed request counts: create
VLAN provider networks, create segments (allocated, then explicit IDs), list
pages of 100, get, rename, delete the segments, delete the networks.  A
round leaves the database as it found it (every ID freed), so rounds repeat
exactly.  Each phase runs on every server before the next phase starts, in
alternating order from round to round, so a change in the neighbours' load
hits all servers alike.  What is compared is the server's CPU per request
(its process tree's CPU clocks), which moves far less with the load than
latency does.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import server
from bench.client import FAKE_ID, NETWORK_VLAN_BASE, SEGMENT_VLAN_BASE, Phase, PhaseResult
from bench.ops import WIRE_OPS
from bench.report import load_average
from bench.runner import FLOORS, Client

# The incumbent's ML2 configuration (../shared/incumbent/start.sh), given to
# segmentd as well so allocation searches ranges of the same size.
VLAN_RANGES = "physnet1:100:199,physnet2:200:299"
ALLOCATABLE_VLANS = 100  # physnet2:200:299
VNI_RANGES = "1000:1999"
SEGMENTD_SETTINGS = {
    "SEGMENTD_NETWORK_VLAN_RANGES": VLAN_RANGES,
    "SEGMENTD_VNI_RANGES": VNI_RANGES,
    "SEGMENTD_FLAT_NETWORKS": "*",
    "SEGMENTD_TENANT_NETWORK_TYPES": "vxlan",
}
MAX_VLAN = 4094


@dataclass(frozen=True)
class Counts:
    """Requests per phase in one round (deletes: everything created)."""

    networks: int = 200
    allocated: int = 80
    explicit: int = 370
    lists: int = 70
    gets: int = 1000
    puts: int = 400

    def check(self) -> None:
        if self.allocated > ALLOCATABLE_VLANS:
            raise ValueError(f"at most {ALLOCATABLE_VLANS} allocated segments (physnet2:200:299)")
        if NETWORK_VLAN_BASE + self.networks > MAX_VLAN + 1:
            raise ValueError("too many networks for explicit VLAN IDs from 2000")
        if SEGMENT_VLAN_BASE + self.allocated + self.explicit > MAX_VLAN + 1:
            raise ValueError("too many explicit segments for VLAN IDs from 3000")

    def steps(self) -> list[tuple[str, int]]:
        segments = self.allocated + self.explicit
        return [
            ("network_create_vlan", self.networks),
            ("segment_create_vlan", self.allocated),
            ("segment_create_explicit", self.explicit),
            ("segment_list", self.lists),
            ("segment_get", self.gets),
            ("segment_update", self.puts),
            ("segment_delete", segments),
            ("network_delete", self.networks),
        ]


# 650 segments with the networks' own: 6 full pages and one of 50 per pass.
FULL = Counts()
QUICK = Counts(networks=10, allocated=5, explicit=20, lists=6, gets=40, puts=20)
WARMUP = Counts(networks=20, allocated=8, explicit=30, lists=10, gets=100, puts=40)


@dataclass
class Target:
    """One server under test and the ids it handed out this round."""

    name: str
    srv: server.Server | int  # a Server we started, or the PID of one started by a script
    port: int
    auth: dict[str, str]
    stop: Callable[[], None]
    networks: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.srv if isinstance(self.srv, int) else self.srv.pid


@dataclass
class Sample:
    """One phase on one server."""

    cpu_ms: float  # server CPU per request
    p50_ms: float
    n: int
    errors: int
    first_error: str
    mean_body: float


Round = dict[str, dict[str, Sample]]  # target name -> op -> sample


def _phase(target: Target, op: str, count: int, first_index: int) -> Phase:
    return Phase(
        op,
        target.port,
        1,
        0.0,
        max_requests=count,
        network_ids=target.networks,
        segment_ids=target.segments,
        first_index=first_index,
        auth=target.auth,
    )


def _keep_ids(target: Target, op: str, result: PhaseResult, issued: int) -> None:
    """Track the ids a slice created or deleted (deletes go in creation order)."""
    if op == "network_create_vlan":
        target.networks = target.networks + result.created_ids
    elif op in ("segment_create_vlan", "segment_create_explicit"):
        target.segments = target.segments + result.created_ids
    elif op == "segment_delete":
        target.segments = target.segments[issued:]
    elif op == "network_delete":
        target.networks = target.networks[issued:]


# A phase is cut into slices of at least MIN_SLICE requests (at most
# MAX_SLICES), and the servers take turns slice by slice in A B B A order:
# a burst of the neighbours' load then lands on both, not on one server's
# whole phase.
MIN_SLICE = 20
MAX_SLICES = 10


def slices(count: int) -> list[int]:
    k = max(1, min(MAX_SLICES, count // MIN_SLICE))
    size, extra = divmod(count, k)
    return [size + (1 if j < extra else 0) for j in range(k)]


@dataclass
class _Tally:
    """One server's slices of one phase, added up."""

    cpu: float = 0.0
    latencies: list[int] = field(default_factory=list)
    completed: int = 0
    errors: int = 0
    first_error: str = ""
    body_bytes: float = 0.0

    def add(self, result: PhaseResult, cpu: float) -> None:
        self.cpu += cpu
        self.latencies += result.latencies_ns
        self.completed += result.completed
        self.errors += result.errors
        self.first_error = self.first_error or result.first_error
        self.body_bytes += result.mean_body * result.completed

    def sample(self) -> Sample:
        ordered = sorted(self.latencies)
        return Sample(
            cpu_ms=1000 * self.cpu / max(self.completed, 1),
            p50_ms=ordered[len(ordered) // 2] / 1e6 if ordered else float("nan"),
            n=self.completed,
            errors=self.errors,
            first_error=self.first_error,
            mean_body=self.body_bytes / max(self.completed, 1),
        )


def run_round(
    client: Client, targets: list[Target], counts: Counts, loads: list[float], label: str
) -> Round:
    """One round; ``loads`` collects the 1-minute load average at every phase."""
    out: Round = {t.name: {} for t in targets}
    for op, count in counts.steps():
        if count == 0:
            continue
        # Explicit IDs continue after the allocated segments, as in bench_api.py.
        offset = counts.allocated if op == "segment_create_explicit" else 0
        tallies = {t.name: _Tally() for t in targets}
        for number, size in enumerate(slices(count)):
            for target in targets if number % 2 == 0 else reversed(targets):
                cpu_before = server.cpu_seconds(target.pid)
                result = client.run(_phase(target, op, size, offset))
                tallies[target.name].add(result, server.cpu_seconds(target.pid) - cpu_before)
                _keep_ids(target, op, result, size)
            offset += size
        loads.append(float(load_average().split()[0]))
        for target in targets:
            sample = out[target.name][op] = tallies[target.name].sample()
            note = f" first error {sample.first_error}" if sample.errors else ""
            print(
                f"  {label} {target.name:10} {op:24} n {sample.n:5} "
                f"server cpu {sample.cpu_ms:8.3f} ms/req p50 {sample.p50_ms:8.2f} ms{note}",
                flush=True,
            )
    return out


def run_rounds(
    client: Client, targets: list[Target], counts: Counts, rounds: int, warmup: bool
) -> tuple[list[Round], list[float]]:
    """A warm-up round (not kept), then ``rounds`` rounds in alternating order."""
    counts.check()
    loads: list[float] = []
    if warmup:
        run_round(client, targets, WARMUP, [], "warm-up")
    kept = []
    for number in range(rounds):
        order = targets if number % 2 == 0 else list(reversed(targets))
        kept.append(run_round(client, order, counts, loads, f"round {number + 1}"))
    return kept, loads


def median_of(rounds: list[Round], target: str, op: str, attr: str) -> float:
    values = [getattr(r[target][op], attr) for r in rounds if op in r[target]]
    return statistics.median(values) if values else float("nan")


def errors_of(rounds: list[Round], target: str) -> int:
    return sum(s.errors for r in rounds for s in r[target].values())


def floor_costs(
    client: Client, sizes: dict[str, float], duration: float, workdir: Path
) -> dict[str, dict[str, float]]:
    """Server CPU per request of both floors for each operation's method and size."""
    out: dict[str, dict[str, float]] = {}
    for name, app in FLOORS.items():
        srv = server.start_floor(1, workdir, app)
        out[name] = {}
        try:
            for op in WIRE_OPS:
                phase = Phase(
                    op.name,
                    srv.port,
                    1,
                    duration,
                    min(0.5, duration / 4),
                    network_ids=[FAKE_ID],
                    segment_ids=[FAKE_ID],
                    floor_size=round(sizes.get(op.name, 0)),
                )
                cpu_before = server.cpu_seconds(srv.pid)
                result = client.run(phase)
                cpu = server.cpu_seconds(srv.pid) - cpu_before
                out[name][op.name] = 1000 * cpu / max(result.completed, 1)
                print(
                    f"  {name:8} {op.name:24} ({phase.floor_size} B) "
                    f"server cpu {out[name][op.name]:.3f} ms/req",
                    flush=True,
                )
        finally:
            server.stop(srv)
    return out


def segmentd_target(
    name: str, workdir: Path, source: Path | None = None, launch: str = "segmentd serve"
) -> Target:
    """segmentd on SQLite, one worker, token authentication, the incumbent's ranges."""
    url = f"sqlite:///{workdir / f'{name}.db'}"
    srv = server.start_segmentd(url, 1, workdir, SEGMENTD_SETTINGS, source, launch)
    token = server.admin_token(srv.port)
    return Target(name, srv, srv.port, {"X-Auth-Token": token}, lambda: server.stop(srv))
