"""/v2.0/events: change events for consumers that pull (admin, ``get_event``).

``since`` is the last ``seq`` the consumer has seen (0: from the oldest
retained); the page holds the next events in order and ``next_since`` is the
cursor for the next call.  ``wait`` (seconds, long poll) holds an empty
answer until an event arrives or the time is up.  A cursor never skips an
event (``services.events.after_cursor``).  Delivered events are pruned after
``events_retention_seconds``: a consumer further behind misses them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import Query
from starlette.responses import Response

from segmentd.api.pipeline import Call, CallOf, Operation, routes
from segmentd.api.schemas import View
from segmentd.api.wire import json_response
from segmentd.authz import Permission
from segmentd.config import EVENT_RESOURCE_TYPES
from segmentd.services import events

router = routes(tag="events")
POLL_INTERVAL_S = 0.25
MAX_WAIT_S = 25.0


class EventView(View):
    id: str
    seq: int
    event_type: str
    resource_type: str
    resource_id: str
    action: str
    project_id: str | None
    revision_number: int | None
    request_id: str
    created_at: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class EventPage(View):
    events: list[EventView]
    next_since: int
    more: bool
    events_links: list[dict[str, str]]


ResourceType = Literal[EVENT_RESOURCE_TYPES]  # type: ignore[valid-type]


@router.get("/v2.0/events", response_model=EventPage)
@Operation(Permission.GET_EVENT, "list")
async def list_events(
    call: CallOf,
    since: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
    resource_type: Annotated[list[ResourceType] | None, Query()] = None,
    # Documented in the README, left out of the OpenAPI document: a
    # schema-driven client (or fuzzer) would otherwise park on it.
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
) -> Response:
    settings = call.runtime.settings
    size = min(limit or settings.pagination_default_limit, settings.pagination_max_limit)
    types = list(resource_type or ())
    # Within the request's deadline, with room to answer.
    budget = min(wait, max(0.0, settings.request_timeout_seconds - 2))
    give_up = time.monotonic() + budget

    def page(c: Call) -> tuple[list[dict[str, Any]], bool]:
        found, more = events.after_cursor(c.db, c.allowed, since, size, types)
        return [events.document(e) for e in found], more

    while True:
        found: list[dict[str, Any]] = []
        more = False

        def keep(c: Call, result: tuple[list[dict[str, Any]], bool]) -> Response:
            nonlocal found, more
            found, more = result
            return Response()

        await call.run(page, keep)
        if found or time.monotonic() >= give_up:
            break
        await asyncio.sleep(POLL_INTERVAL_S)
    next_since = found[-1]["seq"] if found else since
    links = []
    if more:
        query = f"since={next_since}&limit={size}" + "".join(f"&resource_type={t}" for t in types)
        links.append({"rel": "next", "href": f"{call.request.url.path}?{query}"})
    return json_response(
        {"events": found, "next_since": next_since, "more": more, "events_links": links}
    )
