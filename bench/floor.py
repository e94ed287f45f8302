"""The floor: a bare ASGI callable, no framework, served by the same uvicorn.

``/floor/<status>/<size>`` answers ``<status>`` with a JSON body of exactly
``<size>`` bytes (nothing for 204).  The request body is read in full, as the
real service must, so the floor costs what HTTP + uvicorn + JSON bytes cost
and nothing else.  Bodies are built once per size: the floor must not
measure string building either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODIES: dict[int, bytes] = {}


def body_of_size(size: int) -> bytes:
    """A valid JSON object of exactly ``size`` bytes (at least 12)."""
    cached = _BODIES.get(size)
    if cached is None:
        shell = b'{"pad":""}'
        cached = b'{"pad":"' + b"x" * max(0, size - len(shell)) + b'"}'
        _BODIES[size] = cached
    return cached


def _parse(path: str) -> tuple[int, int]:
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "floor" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return 200, 12


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await _drain(receive)
    status, size = _parse(scope["path"])
    body = b"" if status == 204 else body_of_size(size)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
