"""Fail closed: every route declares its operation, and only the listed ones are public.

The route table is walked as the app matches it (routes join the app's own
table; there are no included-router wrappers to look through), so every
route is inspected.  A route without an ``Operation`` cannot even be
declared: ``OperationRoute`` refuses it at import time.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from segmentd.api.pipeline import OperationRoute, routes
from segmentd.authz import Permission
from segmentd.main import create_app
from tests.conftest import make_settings

# Probes, version discovery and logging in (API and console) need no caller; /metrics guards
# itself (a bearer token or loopback: tests/api/test_ops.py).
PUBLIC = {
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/identity"),
    ("GET", "/identity/"),
    ("GET", "/identity/v3"),
    ("GET", "/identity/v3/"),
    ("POST", "/identity/v3/auth/tokens"),
    # The web console's login page and form, and its stylesheet.
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("GET", "/ui/static/{name}"),
}


def undeclared(app: FastAPI) -> list[str]:
    """Routes that are not pipeline routes, or public without being listed as such."""
    wrong = []
    for route in app.routes:
        if not isinstance(route, OperationRoute):
            wrong.append(f"{getattr(route, 'path', route)}: not a pipeline route")
            continue
        op = route.operation
        for method in sorted(route.methods or ()):
            listed = (method, route.path) in PUBLIC
            if listed != (op.kind == "public") or (not listed and op.permission is None):
                wrong.append(f"{method} {route.path}: {op.kind}, {op.permission}")
    return wrong


def test_every_route_declares_its_operation(app: Any) -> None:
    assert undeclared(app) == []
    declared = {
        (method, route.path): route.operation.permission
        for route in app.routes
        for method in route.methods
    }
    assert len(declared) >= 40, "the walk lost routes"
    assert declared.keys() >= PUBLIC
    assert all(isinstance(p, Permission) for k, p in declared.items() if k not in PUBLIC)
    # The identity routes are in the table, with Keystone's rule names.
    assert declared[("GET", "/identity/v3/auth/tokens")] is Permission.VALIDATE_TOKEN
    assert declared[("DELETE", "/identity/v3/auth/tokens")] is Permission.REVOKE_TOKEN


def test_the_walk_finds_a_route_added_without_the_pipeline(database_url: str) -> None:
    """The check can fail: a plain FastAPI route is reported."""
    app = create_app(make_settings(database_url))
    try:

        @app.get("/v2.0/rogue")
        async def rogue() -> dict[str, str]:
            return {}

        assert undeclared(app) == ["/v2.0/rogue: not a pipeline route"]
    finally:
        app.state.runtime.close()


def test_a_route_without_an_operation_cannot_be_declared() -> None:
    router = routes("/v2.0/things")
    with pytest.raises(TypeError, match="declares no Operation"):

        @router.get("")
        async def list_things() -> None:
            return None


def test_discovery(api: Any) -> None:
    aliases = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    assert {"segment", "provider", "multi-provider", "standard-attr-revisions"} <= aliases
    resources = {r["collection"] for r in api.get("/v2.0").json()["resources"]}
    assert {"networks", "segments"} <= resources
