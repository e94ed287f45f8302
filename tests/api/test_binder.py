"""Routes bound by ``api.binder`` answer exactly as FastAPI's solver would.

The binder is an optimisation: the same request to the same route must get
the same status and body whichever path parses it.  Each case is sent to
the app as built, then to one whose routes all use FastAPI's solver.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.routing import request_response

from segmentd.api import pipeline
from segmentd.main import create_app
from tests.client import Api

JSON = {"Content-Type": "application/json"}
SEGMENT = "/v2.0/segments/{seg}"
RENAME = b'{"segment": {"name": "x"}}'


def put_segment(
    body: bytes, headers: dict[str, str] = JSON
) -> tuple[str, str, bytes, dict[str, str]]:
    return ("PUT", SEGMENT, body, headers)


# (method, path, body, headers); {net} and {seg} name existing resources.
CASES: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("GET", SEGMENT, None, {}),
    ("GET", SEGMENT + "?fields=id&fields=name,segmentation_id", None, {}),
    ("GET", SEGMENT + "?fields=nope", None, {}),
    ("GET", SEGMENT + "?" + "&".join(["fields=id"] * 40), None, {}),
    ("GET", "/v2.0/networks/{net}?fields=mtu", None, {}),
    ("GET", "/v2.0/segments/not-a-segment", None, {}),
    put_segment(RENAME),
    put_segment(RENAME, {}),
    put_segment(b'{"segment": {"name": "x"}'),
    put_segment(b'\xff\xfe\x00{"segment"'),
    put_segment(b""),
    put_segment(b"[]"),
    put_segment(RENAME, {"Content-Type": "text/plain"}),
    put_segment(RENAME, {"Content-Type": "application/merge-patch+json; charset=utf-8"}),
    put_segment(b'{"segment": {"network_type": "vxlan"}}'),
    put_segment(b'{"segment": {"bogus": 1}}'),
    put_segment(b'{"segment": {"name": "y"}}', {"If-Match": "revision=1"}),
    put_segment(b'{"segment": {"name": "y"}}', {"If-Match": "revision_number=1"}),
    ("PUT", "/v2.0/networks/{net}", b'{"network": {"mtu": 99999999999}}', JSON),
    ("POST", "/v2.0/networks", b'{"network": {"name": "n", "shared": "maybe"}}', JSON),
    ("POST", "/v2.0/networks", b'{"networks": [{"name": "a"}, {"name": 5}]}', JSON),
    ("POST", "/v2.0/segments", b'{"segment": {"network_id": "{net}"}}', JSON),
    ("DELETE", SEGMENT, None, {"If-Match": "revision_number=x"}),
]


@pytest.fixture
def solver_only(monkeypatch: pytest.MonkeyPatch, runtime: Any) -> Iterator[Api]:
    """The app with every route on FastAPI's solver (as before the binder)."""
    monkeypatch.setattr(pipeline, "compile_binder", lambda route, call: None)
    app = create_app(runtime=runtime)
    # Routes are built once, at import: give this app re-built copies.
    for i, route in enumerate(app.router.routes):
        if isinstance(route, pipeline.OperationRoute):
            clone = app.router.routes[i] = copy.copy(route)
            clone.app = request_response(clone.get_route_handler())
    assert not any(getattr(r, "bound", False) for r in app.routes)
    with Api.for_app(app) as client:
        yield client


def _answer(
    api: Api, case: tuple[str, str, bytes | None, dict[str, str]], ids: dict[str, str]
) -> Any:
    method, path, body, headers = case
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
        body = body.replace(b"{" + name.encode() + b"}", value.encode()) if body else body
    resp = api.request(method, path, content=body, headers=headers)
    return resp.status_code, resp.json() if resp.content else None


def _fresh(api: Api) -> dict[str, str]:
    net = api.create_network(name="n", **{"provider:network_type": "vxlan"})
    seg = api.get(f"/v2.0/segments?network_id={net['id']}").json()["segments"][0]
    return {"net": net["id"], "seg": seg["id"]}


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]} {c[1]} {c[2]!r:.30}" for c in CASES])
def test_bound_and_solved_routes_answer_alike(
    api: Api, solver_only: Api, case: tuple[str, str, bytes | None, dict[str, str]]
) -> None:
    answers = []
    for client in (api, solver_only):
        ids = _fresh(client)
        status, body = _answer(client, case, ids)
        # Ids and times differ between the two runs; everything else must not.
        text = json.dumps(body, sort_keys=True)
        for name, value in ids.items():
            text = text.replace(value, name)
        answers.append((status, json.loads(text) if body is not None else None))
    bound, solved = answers
    if isinstance(bound[1], dict) and "segment" in bound[1]:
        for times in (bound[1]["segment"], solved[1]["segment"]):
            times.pop("created_at", None), times.pop("updated_at", None)
            times.pop("segmentation_id", None)
    assert bound == solved


def test_the_hot_routes_are_bound(app: Any) -> None:
    bound: Callable[[str, str], bool] = lambda method, path: next(  # noqa: E731
        r.bound for r in app.routes if r.path == path and method in r.methods
    )
    for method in ("GET", "PUT", "DELETE"):
        assert bound(method, "/v2.0/segments/{segment_id}")
        assert bound(method, "/v2.0/networks/{network_id}")
    assert bound("POST", "/v2.0/segments")
    # A list keeps the solver: its parameters have validation rules of their own.
    assert not bound("GET", "/v2.0/segments")
