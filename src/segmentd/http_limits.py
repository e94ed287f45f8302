"""Limits on reading a request, enforced by the HTTP protocol before the app runs (CWE-400).

uvicorn's httptools protocol accepts a request head of any size (httptools
re-copies a header value on every read, so its cost grows with the square of
its size, and the worker serves nobody else meanwhile), and waits for ever
for a head or a body that never completes.  ``GuardedHttpToolsProtocol`` is that
protocol plus, per connection, the limits production servers apply (nginx
``large_client_header_buffers`` and ``client_*_timeout``, gunicorn
``limit_request_*``):

- the request target (path and query) at most ``max_url_bytes``: 414;
- the header fields at most ``max_header_bytes`` together and
  ``max_header_count`` in number: 431;
- a request head complete within ``header_timeout`` seconds of the
  connection opening (first request) or of its first bytes (later ones):
  408, or a plain close when the client never sent a byte;
- a request body complete within ``body_timeout`` seconds of its head: 408.

A refusal is written at once and the connection closed, so nothing more is
read from it.  ``segmentd serve`` selects this protocol (``cli.py``); what
it relies on in uvicorn is pinned by ``tests/security/test_http_limits.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from segmentd.config import Settings

log = logging.getLogger("segmentd.http")

# Bytes of a head that the parser callbacks do not report (method, version,
# spaces, line ends): allowed on top of max_header_bytes while a head is
# still arriving, so that the count of an unfinished head never refuses what
# the exact count of the finished one would accept.
HEAD_FRAMING = 64


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_url_bytes: int
    max_header_bytes: int
    max_header_count: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            settings.http_max_url_bytes,
            settings.http_max_header_bytes,
            settings.http_max_header_count,
            settings.http_header_timeout_seconds,
            settings.http_body_timeout_seconds,
        )


def protocol_class(limits: HttpLimits) -> type[asyncio.Protocol]:
    """What ``uvicorn.run(http=...)`` takes: a protocol factory bound to ``limits``.

    uvicorn calls it as it would a class, with keyword arguments only.  A
    partial (not a class made at run time) so that it pickles by reference
    into the worker processes of ``--workers N``.
    """
    return cast(
        "type[asyncio.Protocol]", functools.partial(GuardedHttpToolsProtocol, limits=limits)
    )


class _Refused(Exception):
    """Raised in a parser callback: httptools stops parsing and uvicorn's
    ``data_received`` answers through ``send_400_response``, overridden below."""


# Error bodies in the API's shape (the app, and so faults.py, never sees these requests).
_REFUSALS = {
    "url": (414, "RequestURITooLong", "Request URI is longer than {} bytes."),
    "header_bytes": (431, "RequestHeaderFieldsTooLarge", "Request headers exceed {} bytes."),
    "header_count": (431, "RequestHeaderFieldsTooLarge", "Request has more than {} headers."),
    "header_timeout": (408, "RequestHeaderTimeout", "Request headers not received within {} s."),
    "body_timeout": (408, "RequestBodyTimeout", "Request body not received within {} s."),
}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (one instance per connection)."""

    def __init__(self, *args: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._refusal: tuple[str, float] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head_open = False  # a request has begun and its head is incomplete
        self._body_open = False  # its head is complete and its body is not
        self._ended_in_read = False  # a request ended within the current read
        self._head_read = 0  # bytes of the open head read so far
        self._url_bytes = 0
        self._header_bytes = 0
        self._header_count = 0

    # Connection events ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout)  # the first request's head, from now

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._ended_in_read = False
        super().data_received(data)  # runs the parser callbacks below
        if self.transport.is_closing():
            return
        if self._head_open:
            # httptools reports a header only once it is complete, so the
            # one still arriving is counted here, by the bytes read.  Every
            # byte of this read is the open head's, unless a request ended
            # earlier in it (pipelining): then only what the callbacks saw.
            if self._ended_in_read:
                self._head_read = self._url_bytes + self._header_bytes
            else:
                self._head_read += len(data)
            if self._head_read - self._url_bytes > self.limits.max_header_bytes + HEAD_FRAMING:
                self._refuse("header_bytes", self.limits.max_header_bytes)
                return
            if self._timer is None:
                self._arm(self.limits.header_timeout)
        elif self._body_open and self._timer is None:
            self._arm(self.limits.body_timeout)

    # Parser callbacks (httptools calls them from feed_data) --------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_read = self._url_bytes = self._header_bytes = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        # Called per read with the part of the URL in it, so this is exact.
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._refusal = ("url", self.limits.max_url_bytes)
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_count > self.limits.max_header_count:
            self._refusal = ("header_count", self.limits.max_header_count)
            raise _Refused
        if self._header_bytes > self.limits.max_header_bytes:
            self._refusal = ("header_bytes", self.limits.max_header_bytes)
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._body_open = True  # until on_message_complete, maybe in this same read
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_open = False
        self._ended_in_read = True
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to any parser error, ours (_Refused) included.
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(*self._refusal)

    # Deadlines -------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired, seconds)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, seconds: float) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            self._arm(seconds)  # we stopped reading (back-pressure): not the client's delay
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self._body_open and not cycle.response_started:
                # The app waits for this body: it reads a disconnect now, and
                # whatever it sends later is dropped.
                cycle.disconnected = True
                cycle.message_event.set()
                self._refuse("body_timeout", seconds)
            else:
                cycle.keep_alive = False  # a response is under way: close after it
        elif self._head_open:
            self._refuse("header_timeout", seconds)
        else:
            # Never sent a request, or was answered without sending its whole body.
            self.transport.close()

    def _refuse(self, reason: str, limit: float) -> None:
        status, type_name, template = _REFUSALS[reason]
        message = template.format(f"{limit:g}")
        client = self.client[0] if self.client else "unknown"
        log.info("refused %s request from %s: %s", status, client, message)
        body = json.dumps({"NeutronError": {"type": type_name, "message": message, "detail": ""}})
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body.encode(),
        ]
        self.transport.write(b"".join(content))
        self.transport.close()
