"""Limits on reading a request (``segmentd.http_limits``), against a real ``segmentd serve``.

Raw sockets, because what is tested is what happens before any HTTP client
would consider the request sent: heads too large or never finished, bodies
that never arrive, connections beyond the worker's bound.
"""

from __future__ import annotations

import inspect
import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from segmentd.http_limits import GuardedHttpToolsProtocol
from tests.server import running_server

pytestmark = pytest.mark.slow

MAX_URL = 1024
MAX_HEADER_BYTES = 2048
MAX_HEADERS = 10
HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 2.0
LIMITS = {
    "SEGMENTD_HTTP_MAX_URL_BYTES": str(MAX_URL),
    "SEGMENTD_HTTP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    "SEGMENTD_HTTP_MAX_HEADER_COUNT": str(MAX_HEADERS),
    "SEGMENTD_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
    "SEGMENTD_HTTP_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
}
MEMBER = b"X-Project-Id: p\r\nX-Roles: member\r\n"
Snapshot = Callable[[], dict[str, Any]]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after it


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def port(database_url: str) -> Iterator[int]:
    with running_server(database_url, env=LIMITS) as base:
        yield _port(base)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_reply(sock: socket.socket) -> Reply:
    """One response; then whether the server closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed without a complete response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return Reply(int(status_line.split()[1]), headers, body, _closed(sock))


def _closed(sock: socket.socket, wait: float = 0.5) -> bool:
    timeout = sock.gettimeout()
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.settimeout(timeout)


def ask(port: int, data: bytes) -> Reply:
    with connect(port) as sock:
        sock.sendall(data)
        return read_reply(sock)


def get(path: str = "/healthz", headers: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"


def assert_refused(reply: Reply, status: int, type_name: str) -> None:
    assert reply.status == status, reply
    assert reply.headers["connection"] == "close"
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body)["NeutronError"]["type"] == type_name
    assert reply.closed


def header_lines(total: int, count: int = 1) -> bytes:
    """``count`` header lines whose names, values and separators make ``total`` bytes,
    counted as the limit counts them (name + ": " + value + CRLF)."""
    lines = []
    for i in range(count):
        name = b"X-Pad-%d" % i
        size = total // count + (total % count if i == 0 else 0)
        lines.append(name + b": " + b"a" * (size - len(name) - 4) + b"\r\n")
    return b"".join(lines)


# What the protocol relies on in uvicorn ------------------------------------------


def test_uvicorn_protocol_hooks_we_rely_on() -> None:
    # The subclass overrides these; if uvicorn renamed one, the override
    # would silently never run and the limits would vanish.
    for hook in (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_message_complete",
        "send_400_response",
    ):
        assert hook in vars(HttpToolsProtocol), hook
        assert hook in vars(GuardedHttpToolsProtocol), hook
    # A parser callback's exception reaches send_400_response through
    # data_received's handler of httptools' parser errors.
    source = inspect.getsource(HttpToolsProtocol.data_received)
    assert "self.parser.feed_data(data)" in source
    assert "except httptools.HttpParserError" in source
    assert "self.send_400_response(" in source


# Head size --------------------------------------------------------------------------


def test_request_target_over_the_limit_is_414(port: int) -> None:
    at_limit = "/healthz?" + "a" * (MAX_URL - len("/healthz?"))
    assert ask(port, get(at_limit)).status == 200
    assert_refused(ask(port, get(at_limit + "a")), 414, "RequestURITooLong")


def test_header_bytes_over_the_limit_are_431(port: int) -> None:
    host_line = len(b"Host: x\r\n")
    assert ask(port, get(headers=header_lines(MAX_HEADER_BYTES - host_line))).status == 200
    over = header_lines(MAX_HEADER_BYTES - host_line + 1)
    assert_refused(ask(port, get(headers=over)), 431, "RequestHeaderFieldsTooLarge")
    # Spread over many headers, too.
    over = header_lines(MAX_HEADER_BYTES - host_line + 1, count=MAX_HEADERS - 1)
    assert_refused(ask(port, get(headers=over)), 431, "RequestHeaderFieldsTooLarge")


def test_header_count_over_the_limit_is_431(port: int) -> None:
    assert ask(port, get(headers=header_lines(200, MAX_HEADERS - 1))).status == 200
    over = get(headers=header_lines(200, MAX_HEADERS))
    assert_refused(ask(port, over), 431, "RequestHeaderFieldsTooLarge")


def test_unfinished_large_header_is_refused_before_it_ends(port: int) -> None:
    # A header is reported by the parser only once complete; this one never
    # is.  Sent a piece at a time, it is refused as soon as the bytes read
    # pass the limit, with the rest never sent.
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1536)
        for _ in range(8):
            answered, _, _ = select.select([sock], [], [], 1.0)
            if answered:
                break
            sock.sendall(b"a" * 1024)
        assert_refused(read_reply(sock), 431, "RequestHeaderFieldsTooLarge")


def test_huge_header_costs_the_server_nothing(port: int) -> None:
    # 64 MiB took 5.4 s of the worker before the limit; now the server stops
    # reading at once (the client sees its 431 or a reset), and serves on.
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 64 * 2**20:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 64 * 2**20
    assert ask(port, get()).status == 200


def test_keep_alive_requests_each_get_the_whole_allowance(port: int) -> None:
    # The counts are per request: several requests near the limit on one
    # connection are all served.
    near = get(headers=header_lines(MAX_HEADER_BYTES - 100, MAX_HEADERS - 2))
    with connect(port) as sock:
        for _ in range(3):
            sock.sendall(near)
            reply = read_reply(sock)
            assert (reply.status, reply.closed) == (200, False)


# Timeouts ----------------------------------------------------------------------------


def test_idle_connection_is_closed_after_the_header_timeout(port: int) -> None:
    with connect(port) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed, nothing said: no request was begun
        assert time.monotonic() - started < 20 * HEADER_TIMEOUT


def test_unfinished_head_is_408(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert_refused(read_reply(sock), 408, "RequestHeaderTimeout")


def test_unfinished_body_is_408_and_nothing_is_written(port: int, snapshot: Snapshot) -> None:
    before = snapshot()
    # The bytes that did arrive are a whole, valid request: still nothing is
    # created from a body shorter than its Content-Length.
    body = b'{"network": {"name": "cut-short"}}'
    head = b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with connect(port) as sock:
        sock.sendall(head + MEMBER + b"Content-Length: %d\r\n\r\n" % (len(body) + 10) + body)
        assert_refused(read_reply(sock), 408, "RequestBodyTimeout")
    time.sleep(0.5)  # the app's side of the request has finished
    assert snapshot() == before


def test_slow_body_within_the_timeout_is_served(port: int, snapshot: Snapshot) -> None:
    body = b'{"network": {"name": "slow-but-steady"}}'
    head = b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with connect(port) as sock:
        sock.sendall(head + MEMBER + b"Content-Length: %d\r\n\r\n" % len(body))
        for piece in (body[:10], body[10:20], body[20:]):
            time.sleep(BODY_TIMEOUT / 10)
            sock.sendall(piece)
        reply = read_reply(sock)
    assert reply.status == 201, reply
    assert json.loads(reply.body)["network"]["name"] == "slow-but-steady"


# Connections per worker -----------------------------------------------------------------


def test_connections_beyond_the_bound_are_503(database_url: str) -> None:
    # uvicorn's limit_concurrency counts open connections, the asking one
    # included: with a bound of 4, three held open leave room for none.
    with running_server(database_url, env={"SEGMENTD_HTTP_MAX_CONNECTIONS": "4"}) as base:
        port = _port(base)
        assert ask(port, get()).status == 200
        with ExitStack() as held:
            for _ in range(3):
                held.enter_context(connect(port)).sendall(b"GET /healthz HTTP/1.1\r\n")
            time.sleep(0.2)
            assert ask(port, get()).status == 503
        time.sleep(0.2)
        assert ask(port, get()).status == 200
