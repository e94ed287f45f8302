"""GET /v2.0/events: a cursor over the outbox for consumers that pull."""

from __future__ import annotations

import threading
import time

import pytest

from segmentd.api.runtime import Runtime
from segmentd.services import events
from tests.client import Api


def test_pages_follow_the_cursor_in_order(api: Api) -> None:
    nets = [api.create_network(name=f"n{i}") for i in range(5)]
    api.put(f"/v2.0/networks/{nets[0]['id']}", {"network": {"name": "renamed"}})
    first = api.get("/v2.0/events", params={"limit": 4})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["more"] is True and len(body["events"]) == 4
    assert [e["after"]["name"] for e in body["events"]] == ["n0", "n1", "n2", "n3"]
    assert body["next_since"] == body["events"][-1]["seq"]
    assert body["events_links"][0]["rel"] == "next"
    rest = api.get(body["events_links"][0]["href"]).json()
    assert [e["event_type"] for e in rest["events"]] == ["network.create", "network.update"]
    assert rest["more"] is False and rest["events_links"] == []
    assert rest["events"][-1]["before"]["name"] == "n0"
    assert (
        rest["events"][-1]["after"] == api.get(f"/v2.0/networks/{nets[0]['id']}").json()["network"]
    )
    # Caught up: an empty page keeps the cursor.
    done = api.get("/v2.0/events", params={"since": rest["next_since"]}).json()
    assert done == {
        "events": [],
        "next_since": rest["next_since"],
        "more": False,
        "events_links": [],
    }
    subnets = api.get("/v2.0/events", params={"resource_type": "subnet"}).json()
    assert subnets["events"] == []


def test_long_poll_answers_when_an_event_arrives(api: Api) -> None:
    since = api.get("/v2.0/events").json()["next_since"]
    timer = threading.Timer(0.5, lambda: api.create_network(name="late"))
    timer.start()
    started = time.monotonic()
    resp = api.get("/v2.0/events", params={"since": since, "wait": 10})
    timer.join()
    assert resp.status_code == 200
    assert [e["after"]["name"] for e in resp.json()["events"]] == ["late"]
    assert 0.3 < time.monotonic() - started < 8


def test_only_admins_read_events_and_bad_cursors_are_400(api: Api) -> None:
    api.create_network(name="secret")
    member = api.as_("p1", "member")
    assert member.get("/v2.0/events").status_code == 403
    for params in ({"since": "-1"}, {"since": "x"}, {"wait": "100"}, {"resource_type": "port"}):
        assert api.get("/v2.0/events", params=params).status_code == 400, params


def test_a_cursor_never_skips_an_event_committed_late(
    api: Api, runtime: Runtime, is_postgres: bool
) -> None:
    """PostgreSQL draws an event's number before its commit: a later number
    may commit first.  A page waits for the earlier one instead of skipping it."""
    if not is_postgres:
        pytest.skip("SQLite runs one writer at a time: numbers commit in order")
    drawn = threading.Event()

    def slow_writer() -> None:
        with runtime.db.transaction(write=True) as session:
            events.record(session, "network", "slow-one", "create", None, {"id": "slow-one"})
            drawn.set()
            time.sleep(1.0)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert drawn.wait(10)
    api.create_network(name="fast")  # a higher number, committed first
    page = api.get("/v2.0/events").json()
    writer.join()
    assert page["events"][0]["resource_id"] == "slow-one"
    assert len(page["events"]) == 2
