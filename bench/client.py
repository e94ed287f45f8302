"""The load generator: a separate process speaking raw HTTP/1.1 with keep-alive.

Why this shape, on a 2-core machine:

* It runs in its own process (``multiprocessing`` spawn), so the server and
  the client never share a GIL, and the runner's bookkeeping never steals
  time from the measurement.
* All concurrent clients live in ONE process as asyncio tasks on uvloop, one
  keep-alive connection each.  Threads would serialise on the GIL anyway,
  and several client processes would fight the server for the two cores
  (with ``--workers 2`` the server already wants both).  One event loop is
  the cheapest way to hold 16 connections open, so the server, not the
  client, is what saturates.
* Requests are pre-rendered bytes and responses are parsed by hand
  (status line, Content-Length): httpx costs ~10x more client CPU per
  request and would cap the floor, flattering every "x floor" ratio.
  Client CPU use is reported so a client-bound run is visible.
* Every response body is decoded with orjson, for the floor as well, so
  the client does the same work against both servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson

from bench.auth import auth_headers
from bench.ops import BY_NAME

FAKE_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class Phase:
    """One measurement: an operation against one server for a time or a count."""

    op: str
    port: int
    concurrency: int
    duration: float
    warmup: float = 0.0
    max_requests: int | None = None
    network_ids: list[str] = field(default_factory=list)
    segment_ids: list[str] = field(default_factory=list)
    floor_size: int | None = None  # set: drive the floor, answering this many bytes
    # Added to the request counter (explicit VLAN IDs, which segment to read):
    # every server gets the same requests, and a slice of a phase continues
    # where the previous slice stopped.
    first_index: int = 0
    # Built in the runner's process, which knows the current server's token.
    auth: dict[str, str] = field(default_factory=auth_headers)


@dataclass
class PhaseResult:
    op: str
    latencies_ns: list[int]
    elapsed: float
    errors: int
    first_error: str
    client_cpu: float  # fraction of one core the client used
    mean_body: float
    completed: int  # successful responses, warm-up included
    created_ids: list[str]


@dataclass
class _State:
    """Shared by the tasks of one phase (one event loop, so no locks)."""

    phase: Phase
    measure_from: float
    measure_to: float
    issued: int = 0
    latencies: list[int] = field(default_factory=list)
    last_end: float = 0.0
    errors: int = 0
    first_error: str = ""
    body_bytes: int = 0
    bodies: int = 0
    created: list[str] = field(default_factory=list)
    delete_pool: list[str] = field(default_factory=list)


def _header_block(port: int, auth: dict[str, str]) -> str:
    """Headers common to every request of a phase, rendered once."""
    lines = [f"Host: 127.0.0.1:{port}"] + [f"{k}: {v}" for k, v in auth.items()]
    return "".join(line + "\r\n" for line in lines)


def _render(method: str, path: str, headers: str, body: bytes) -> bytes:
    extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/1.1\r\n{headers}{extra}\r\n".encode() + body


LIST_PAGE = "/v2.0/segments?limit=100"
# The wire workload's provider IDs, as the incumbent's bench_api.py numbers them.
NETWORK_VLAN_BASE = 2000
SEGMENT_VLAN_BASE = 3000


def _wire_create(ph: Phase, op: str, i: int) -> tuple[str, str, bytes]:
    """The wire workload's creates: bench_api.py's bodies, request for request."""
    n = ph.first_index + i - 1
    if op == "network_create_vlan":
        net = {
            "name": f"bench-net-{n}",
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": NETWORK_VLAN_BASE + n,
        }
        return "POST", "/v2.0/networks", orjson.dumps({"network": net})
    seg: dict[str, object] = {
        "network_id": ph.network_ids[n % len(ph.network_ids)],
        "network_type": "vlan",
        "physical_network": "physnet2",
        "name": f"bench-seg-{n}",
    }
    if op == "segment_create_explicit":
        seg["segmentation_id"] = SEGMENT_VLAN_BASE + n
    return "POST", "/v2.0/segments", orjson.dumps({"segment": seg})


def _pop(state: _State) -> str | None:
    if state.phase.floor_size is not None:
        return FAKE_ID
    return state.delete_pool.pop() if state.delete_pool else None


def _next_request(state: _State, cursor: list[str], i: int) -> tuple[str, str, bytes] | None:
    """(method, path, body) for the next request, or None when out of work.

    Reads and updates walk the segment ids in order (not at random), so two
    servers given the same phase get the same sequence of requests.
    """
    ph = state.phase
    op = ph.op
    if op == "network_create":
        body = {"network": {"name": f"bench-{i}", "provider:network_type": "local"}}
        return "POST", "/v2.0/networks", orjson.dumps(body)
    if op == "segment_create":
        net = ph.network_ids[i % len(ph.network_ids)]
        return (
            "POST",
            "/v2.0/segments",
            orjson.dumps({"segment": {"network_id": net, "network_type": "vxlan"}}),
        )
    if op in ("network_create_vlan", "segment_create_vlan", "segment_create_explicit"):
        return _wire_create(ph, op, i)
    # first_index: a slice of a phase carries on where the previous one stopped.
    pick = ph.first_index + i
    if op == "segment_get":
        return "GET", f"/v2.0/segments/{ph.segment_ids[pick % len(ph.segment_ids)]}", b""
    if op == "segment_list":
        return "GET", cursor[0], b""
    if op == "segment_update":
        rename = orjson.dumps({"segment": {"name": f"renamed-{i}"}})
        return "PUT", f"/v2.0/segments/{ph.segment_ids[pick % len(ph.segment_ids)]}", rename
    if op in ("segment_delete", "network_delete"):
        victim = _pop(state)
        kind = "segments" if op == "segment_delete" else "networks"
        return None if victim is None else ("DELETE", f"/v2.0/{kind}/{victim}", b"")
    raise ValueError(f"unknown operation {op!r}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server closes the connection after it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    closing = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closing = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not expected from these endpoints")
    body = await reader.readexactly(length) if length else b""
    return status, body, closing


def _digest(state: _State, status: int, body: bytes, cursor: list[str]) -> None:
    """Decode the body (both servers pay this) and keep what later phases need."""
    doc: Any = orjson.loads(body) if body else None
    op = state.phase.op
    if state.phase.floor_size is not None or doc is None:
        return
    if status == 201:
        state.created.append(doc["network" if "network" in op else "segment"]["id"])
    elif op == "segment_list":
        # A full page: the next one from its last id; else start again.  Not
        # the server's links: servers differ on whether a full last page has
        # a "next" link, and both must get the same requests.
        items = doc["segments"]
        cursor[0] = f"{LIST_PAGE}&marker={items[-1]['id']}" if len(items) == 100 else LIST_PAGE


def _record(state: _State, started: float, ended: float, status: int, body: bytes) -> None:
    expected = BY_NAME[state.phase.op].expected_status
    if status != expected:
        state.errors += 1
        state.first_error = state.first_error or f"{status}: {body[:200]!r}"
        return
    state.body_bytes += len(body)
    state.bodies += 1
    if started >= state.measure_from:
        state.latencies.append(int((ended - started) * 1e9))
        state.last_end = max(state.last_end, ended)


# A phase whose first requests outlast its window (a loaded machine, 16
# writers queued on SQLite) keeps going until one request starting inside
# the window has completed, so every phase has a latency to report.
GRACE_SECONDS = 30.0


def _more(state: _State) -> bool:
    now = time.perf_counter()
    if now < state.measure_to:
        return True
    return not state.latencies and now < state.measure_to + GRACE_SECONDS


async def _connection(state: _State) -> None:
    ph = state.phase
    reader, writer = await asyncio.open_connection("127.0.0.1", ph.port)
    cursor = [LIST_PAGE]
    headers = _header_block(ph.port, ph.auth)
    try:
        while _more(state):
            if ph.max_requests is not None and state.issued >= ph.max_requests:
                break
            state.issued += 1
            req = _next_request(state, cursor, state.issued)
            if req is None:
                break
            method, path, body = req
            if ph.floor_size is not None:
                path = f"/floor/{BY_NAME[ph.op].expected_status}/{ph.floor_size}"
            started = time.perf_counter()
            writer.write(_render(method, path, headers, body))
            status, payload, closing = await _read_response(reader)
            ended = time.perf_counter()
            _record(state, started, ended, status, payload)
            _digest(state, status, payload, cursor)
            if closing:  # the incumbent's uWSGI closes after every response
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", ph.port)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _run(phase: Phase) -> PhaseResult:
    now = time.perf_counter()
    timed = phase.max_requests is None
    start = now + phase.warmup if timed else now
    state = _State(phase, start, start + phase.duration if timed else float("inf"))
    pool = phase.network_ids if phase.op == "network_delete" else phase.segment_ids
    state.delete_pool = list(reversed(pool))  # popped from the end: creation order
    cpu0 = time.process_time()
    await asyncio.gather(*(_connection(state) for _ in range(phase.concurrency)))
    wall = time.perf_counter() - now
    cpu = (time.process_time() - cpu0) / wall if wall else 0.0
    return PhaseResult(
        op=phase.op,
        latencies_ns=state.latencies,
        elapsed=max(state.last_end - start, 1e-9),
        errors=state.errors,
        first_error=state.first_error,
        client_cpu=cpu,
        mean_body=state.body_bytes / state.bodies if state.bodies else 0.0,
        completed=state.bodies,
        created_ids=state.created,
    )


def run_phase(phase: Phase) -> PhaseResult:
    import uvloop

    return uvloop.run(_run(phase))


def serve(conn: Connection) -> None:
    """Entry point of the client process: run phases until told to stop."""
    while True:
        phase = conn.recv()
        if phase is None:
            return
        conn.send(run_phase(phase))
