"""The listening socket of ``segmentd serve``, and what the catalog advertises.

``serve`` binds the socket itself, before uvicorn starts, so that a busy
port is a one-line error and the "listening" line is only printed once the
address is really ours.  Uvicorn then serves on that socket (its workers
inherit it).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind
DEFAULT_PORTS = {"http": 80, "https": 443}


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); ``OSError`` when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listening now: a client that connects before uvicorn is up waits in
        # the backlog instead of being refused.
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def served_url(host: str, port: int) -> str:
    """The URL of the bound address, as a client on this machine would write it."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def public_url_mismatch(public_url: str, host: str, port: int) -> str | None:
    """Why ``public_url`` does not reach (host, port), or ``None`` when it does.

    A wildcard bind serves every local address, so only the port must agree.
    Names are compared by the addresses they resolve to, and two loopback
    addresses count as one (``localhost`` and ``127.0.0.1``).
    """
    parts = urlsplit(public_url)
    scheme, name = parts.scheme, parts.hostname or ""
    wanted_port = parts.port or DEFAULT_PORTS.get(scheme)
    if scheme != "http":
        return f"it uses {scheme or 'no scheme'}, segmentd serves plain http"
    if wanted_port != port:
        return f"its port is {wanted_port}, segmentd serves port {port}"
    if host in WILDCARDS:
        return None
    theirs, ours = _addresses(name), _addresses(host)
    if theirs & ours:
        return None
    if theirs and all(map(_is_loopback, theirs | ours)):
        return None
    return f"{name} is not the address served ({host})"
