"""Assertions shared by test modules (test modules never import each other)."""

from __future__ import annotations

import re
from typing import Any

# What an error body must never contain: tracebacks, driver or SQL text, paths.
LEAKS = re.compile(
    r"Traceback|sqlalchemy|psycopg|sqlite|SELECT|INSERT|/work/|\.py|segments\.", re.I
)


def assert_error(resp: Any, status: int, type_name: str | None = None) -> dict[str, Any]:
    """A Neutron error body with ``status`` (and ``type_name``) and a request id."""
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["NeutronError"]
    assert set(error) == {"type", "message", "detail"}
    assert error["message"]
    if type_name:
        assert error["type"] == type_name
    assert resp.headers["X-Openstack-Request-Id"].startswith("req-")
    return error
