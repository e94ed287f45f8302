"""Rendering a pipeline step's result: one resource, or a page of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.responses import Response

from segmentd.api import schemas
from segmentd.api.params import ListParams
from segmentd.api.pipeline import Call
from segmentd.api.wire import json_response
from segmentd.db.base import Page

View = Callable[[Call, Any], dict[str, Any]]
Render = Callable[[Call, Any], Response]


def one(key: str, view: View, fields: Sequence[str] = (), status: int = 200) -> Render:
    """``{key: view}``, projected on ``fields``."""

    def render(call: Call, found: Any) -> Response:
        return json_response({key: schemas.project(view(call, found), list(fields))}, status)

    return render


def created(key: str, plural: str, view: View, bulk: bool) -> Render:
    """A create's answer: ``{key: view}``, or ``{plural: [views]}`` for a bulk create."""
    if not bulk:
        return lambda call, found: one(key, view, status=201)(call, found[0])

    def render(call: Call, found: list[Any]) -> Response:
        return json_response({plural: [view(call, item) for item in found]}, 201)

    return render


def page(key: str, view: View, params: ListParams) -> Render:
    """``{key: [views]}`` with ``<key>_links``, projected on the list's ``fields``."""

    def render(call: Call, found: Page) -> Response:
        views = [schemas.project(view(call, item), params.fields) for item in found.items]
        body = schemas.collection(
            call.request.url, key, views, found, params.query, params.limit_given
        )
        return json_response(body)

    return render
