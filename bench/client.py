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
import random
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


def _next_request(state: _State, cursor: list[str], i: int) -> tuple[str, str, bytes] | None:
    """(method, path, body) for the next request, or None when out of work."""
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
    if op == "segment_get":
        return "GET", f"/v2.0/segments/{random.choice(ph.segment_ids)}", b""
    if op == "segment_list":
        return "GET", cursor[0], b""
    if op == "segment_update":
        body = orjson.dumps({"segment": {"name": f"renamed-{i}"}})
        return "PUT", f"/v2.0/segments/{random.choice(ph.segment_ids)}", body
    if op == "segment_delete":
        if ph.floor_size is not None:
            return "DELETE", f"/v2.0/segments/{FAKE_ID}", b""
        if not state.delete_pool:
            return None
        return "DELETE", f"/v2.0/segments/{state.delete_pool.pop()}", b""
    raise ValueError(f"unknown operation {op!r}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding":
            raise ValueError("chunked responses are not expected from these endpoints")
    body = await reader.readexactly(length) if length else b""
    return status, body


def _digest(state: _State, status: int, body: bytes, cursor: list[str]) -> None:
    """Decode the body (both servers pay this) and keep what later phases need."""
    doc: Any = orjson.loads(body) if body else None
    op = state.phase.op
    if state.phase.floor_size is not None or doc is None:
        return
    if op in ("network_create", "segment_create") and status == 201:
        state.created.append(doc["network" if op == "network_create" else "segment"]["id"])
    elif op == "segment_list":
        nxt = [link["href"] for link in doc.get("segments_links", []) if link["rel"] == "next"]
        # Follow the marker; after the last page start again from the first.
        cursor[0] = _path_of(nxt[0]) if nxt else "/v2.0/segments?limit=100"


def _path_of(href: str) -> str:
    return "/" + href.split("://", 1)[-1].split("/", 1)[1]


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


async def _connection(state: _State) -> None:
    ph = state.phase
    reader, writer = await asyncio.open_connection("127.0.0.1", ph.port)
    cursor = ["/v2.0/segments?limit=100"]
    headers = _header_block(ph.port, ph.auth)
    try:
        while time.perf_counter() < state.measure_to:
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
            status, payload = await _read_response(reader)
            ended = time.perf_counter()
            _record(state, started, ended, status, payload)
            _digest(state, status, payload, cursor)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _run(phase: Phase) -> PhaseResult:
    now = time.perf_counter()
    timed = phase.max_requests is None
    start = now + phase.warmup if timed else now
    state = _State(phase, start, start + phase.duration if timed else float("inf"))
    state.delete_pool = list(phase.segment_ids)
    random.shuffle(state.delete_pool)
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
