"""Webhook sink: one signed JSON POST per event.

The body is the event document (README, "Change events").  Headers:

* ``X-Segmentd-Event-Id``: the event's id (receivers drop duplicates by it);
* ``X-Segmentd-Timestamp``: Unix seconds when this attempt was signed;
* ``X-Segmentd-Signature``: ``v1=<hex>`` per configured secret, comma
  separated: HMAC-SHA256 of ``<timestamp>.<body>``.  Several secrets let a
  receiver move to a new one without losing an event.

The target's address is resolved once and checked before connecting, and
the connection goes to that address (no second lookup an attacker could
answer differently): loopback, link-local (cloud metadata), unspecified,
multicast and reserved addresses are refused unless ``allow_private``.
Redirects are never followed (a 3xx is a failure), and any status but 2xx
is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from segmentd.config import WebhookSink
from segmentd.delivery.sinks import DeliveryFailed

# Cloud metadata services outside the link-local range.
METADATA_NETWORKS = (
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
)
USER_AGENT = "segmentd-events/1"
MAX_RESPONSE_BYTES = 64 * 1024


def refused(address: str) -> str | None:
    """Why ``address`` may not be a webhook target (None: it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local or any(ip in net for net in METADATA_NETWORKS):
        return "link-local or metadata"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "not a unicast address"
    return None


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Webhook:
    def __init__(self, config: WebhookSink, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock
        parts = urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._secrets = [s.get_secret_value().encode() for s in config.secrets]

    def _address(self) -> str:
        try:
            infos = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise DeliveryFailed(f"cannot resolve {self._host}: {exc}") from None
        addresses = [str(info[4][0]) for info in infos]
        if not self.config.allow_private:
            for address in addresses:
                why = refused(address)
                if why is not None:
                    raise DeliveryFailed(f"target {address} refused ({why}; allow_private)")
        return addresses[0]

    def _connection(self) -> http.client.HTTPConnection:
        timeout = self.config.timeout_seconds
        address = self._address()
        sock = socket.create_connection((address, self._port), timeout=timeout)
        if self._https:
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self._host)
        conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        conn.sock = sock  # connected to the checked address; never resolved again
        return conn

    def headers(self, document: dict[str, Any], body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        signatures = ",".join(f"v1={sign(s, timestamp, body)}" for s in self._secrets)
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Segmentd-Event-Id": str(document["id"]),
            "X-Segmentd-Event-Type": str(document["event_type"]),
            "X-Segmentd-Timestamp": timestamp,
            "X-Segmentd-Signature": signatures,
        }

    def send(self, document: dict[str, Any]) -> None:
        body = orjson.dumps(document)
        try:
            conn = self._connection()
        except OSError as exc:
            raise DeliveryFailed(f"cannot connect: {exc}") from None
        try:
            conn.request("POST", self._path, body, self.headers(document, body))
            response = conn.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryFailed(f"request failed: {exc!r}") from None
        finally:
            conn.close()
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}")

    def close(self) -> None:
        pass
