"""A webhook receiver on loopback that checks signatures, as the README tells receivers to."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "receiver-secret-0123456789"  # noqa: S105 - a test key


def verify(secrets: list[str], headers: Any, body: bytes, tolerance_s: float = 300) -> bool:
    """The README's receiver snippet: any of our secrets signed ``<timestamp>.<body>``."""
    timestamp = headers["X-Segmentd-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    given = [
        part.removeprefix("v1=")
        for part in headers["X-Segmentd-Signature"].split(",")
        if part.startswith("v1=")
    ]
    for secret in secrets:
        expected = hmac.new(
            secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        if any(hmac.compare_digest(expected, g) for g in given):
            return True
    return False


class Receiver:
    """``mode``: ``ok`` (204), ``fail`` (500), ``slow`` (answers after ``delay``), ``redirect``."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = secrets or [SECRET]
        self.mode = "ok"
        self.delay = 1.0
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []  # every POST that verified, in arrival order
        self.bad_signatures = 0
        self.url = ""

    def ids(self) -> list[str]:
        with self.lock:
            return [e["id"] for e in self.received]

    def unique(self) -> list[dict[str, Any]]:
        """First arrival of each event (duplicates dropped by event id, as a receiver does)."""
        seen: set[str] = set()
        out = []
        with self.lock:
            for event in self.received:
                if event["id"] not in seen:
                    seen.add(event["id"])
                    out.append(event)
        return out

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mode = receiver.mode
                if mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", receiver.url + "elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "fail":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not verify(receiver.secrets, self.headers, body):
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                event = json.loads(body)
                assert self.headers["X-Segmentd-Event-Id"] == event["id"]
                with receiver.lock:
                    receiver.received.append(event)
                if mode == "slow":
                    time.sleep(receiver.delay)
                self.send_response(204)
                self.end_headers()

        return Handler


@contextmanager
def receiving(secrets: list[str] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(secrets)
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
