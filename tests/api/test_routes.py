"""Every route declares its one permission; discovery routes are the only exceptions."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

# Probes and the scrape endpoint take no token (api/ops.py guards /metrics itself).
PUBLIC = {"/", "/v2.0", "/v2.0/", "/v2.0/extensions", "/healthz", "/readyz", "/metrics"}


def _permissions(route: APIRoute) -> list[str]:
    found = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        permission = getattr(dep.call, "permission", None)
        if permission is not None:
            found.append(str(permission))
        stack.extend(dep.dependencies)
    return found


def test_every_route_declares_exactly_one_permission(app: Any) -> None:
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path in PUBLIC:
            continue
        assert len(_permissions(route)) == 1, f"{route.path} {route.methods}"


def test_discovery(api: Any) -> None:
    aliases = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    assert {"segment", "provider", "multi-provider", "standard-attr-revisions"} <= aliases
    resources = {r["collection"] for r in api.get("/v2.0").json()["resources"]}
    assert {"networks", "segments"} <= resources
