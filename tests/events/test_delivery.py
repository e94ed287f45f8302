"""Delivery to webhooks: signed, in order per resource, retried, dead-lettered, replayed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update

from segmentd.api.runtime import Runtime
from segmentd.db.events import Event, EventSinkStats
from segmentd.delivery.webhook import Webhook, refused
from segmentd.delivery.worker import Worker
from segmentd.services import events
from tests.client import Api
from tests.conftest import make_settings
from tests.events.receiver import SECRET, Receiver, receiving

TOKEN = "scraper-token-0123456789"  # noqa: S105 - a test credential


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def sink(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "webhook",
        "name": "hook",
        "url": url,
        "secrets": [SECRET, "an-older-secret-0123"],
        "allow_private": True,
        "timeout_seconds": 2,
        **extra,
    }


@pytest.fixture
def make_worker(runtime: Runtime, database_url: str) -> Callable[..., Worker]:
    def factory(sinks: list[dict[str, Any]], **overrides: Any) -> Worker:
        fast = {
            "events_retry_base_seconds": 0.05,
            "events_retry_max_seconds": 0.2,
            "events_poll_seconds": 0.02,
        }
        settings = make_settings(database_url, event_sinks=sinks, **{**fast, **overrides})
        return Worker(settings, runtime.db)

    return factory


def drain(worker: Worker) -> None:
    worker.run(threading.Event(), once=True)


def states(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [(r.state, r.attempts) for r in conn.execute(select(Event).order_by(Event.seq))]


def counters(engine: Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        return {r.sink: (r.deliveries, r.failures) for r in conn.execute(select(EventSinkStats))}


def burst(api: Api, networks: int = 3, updates: int = 5) -> list[str]:
    ids = [api.create_network(name=f"n{i}")["id"] for i in range(networks)]
    for round_ in range(updates):
        for net_id in ids:
            resp = api.put(f"/v2.0/networks/{net_id}", {"network": {"name": f"r{round_}"}})
            assert resp.status_code == 200, resp.text
    return ids


def assert_in_order_per_resource(received: list[dict[str, Any]]) -> None:
    by_resource: dict[str, list[int]] = {}
    for event in received:
        by_resource.setdefault(event["resource_id"], []).append(event["seq"])
    for seqs in by_resource.values():
        assert seqs == sorted(seqs)


def test_signed_events_arrive_once_in_order_with_the_documented_shape(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    ids = burst(api)
    net = api.get(f"/v2.0/networks/{ids[0]}").json()["network"]
    worker = make_worker([sink(receiver.url)])
    drain(worker)
    assert receiver.bad_signatures == 0
    assert len(receiver.received) == 18 and len(set(receiver.ids())) == 18
    assert_in_order_per_resource(receiver.received)
    last = [e for e in receiver.received if e["resource_id"] == ids[0]][-1]
    assert last["event_type"] == "network.update" and last["after"] == net
    assert last["before"]["name"] == "r3" and last["revision_number"] == net["revision_number"]
    assert set(last) == {
        "id", "seq", "event_type", "resource_type", "resource_id", "action", "project_id",
        "revision_number", "request_id", "created_at", "before", "after",
    }  # fmt: skip
    assert states(engine) == [("delivered", 1)] * 18
    assert counters(engine) == {"hook": (18, 0)}
    # Nothing more to send: a second pass delivers nothing again.
    drain(worker)
    assert len(receiver.received) == 18


def test_a_receiver_with_only_the_new_secret_accepts_events(
    api: Api, make_worker: Callable[..., Worker]
) -> None:
    # Rotation: the sender signs with both; a receiver knowing either accepts.
    with receiving(["an-older-secret-0123"]) as old_only:
        api.create_network(name="x")
        drain(make_worker([sink(old_only.url)]))
        assert old_only.bad_signatures == 0 and len(old_only.received) == 1
    with receiving(["some-other-secret-000"]) as stranger:
        api.create_network(name="y")
        drain(make_worker([sink(stranger.url)]))
        assert stranger.received == [] and stranger.bad_signatures == 1


def test_failures_are_retried_with_backoff_then_delivered_in_order(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker(
        [sink(receiver.url)], events_retry_base_seconds=60, events_retry_max_seconds=60
    )
    receiver.mode = "fail"
    ids = burst(api, networks=2, updates=3)
    assert worker.step() == 8  # each resource's events, in order
    assert [s for s, _ in states(engine)] == ["pending"] * 8
    # The sink failed on the first; in the same batch it is not tried again,
    # and the events it held back count no attempt.
    assert [a for _, a in states(engine)] == [1, 0, 0, 0, 0, 0, 0, 0]
    with engine.connect() as conn:
        first = conn.execute(select(Event).order_by(Event.seq)).first()
    assert first is not None and "HTTP 500" in first.last_error
    assert first.next_attempt_at > events.now() + dt.timedelta(seconds=20)  # backed off
    # The other network's events, at once (the first one's wait for it): the
    # first fails, the rest are held back again.
    assert worker.step() == 4
    assert worker.step() == 0  # nothing due now
    receiver.mode = "ok"
    engine_reset(engine)  # as if the backoff had passed
    drain(worker)
    assert receiver.received and len(receiver.unique()) == 8
    assert len(receiver.received) == 8  # a refused delivery is not a delivery: no duplicates
    assert_in_order_per_resource(receiver.received)
    assert {e["resource_id"] for e in receiver.received} == set(ids)
    assert all(s == "delivered" for s, _ in states(engine))
    assert counters(engine)["hook"] == (8, 2)


def test_a_down_sink_costs_one_timeout_per_batch(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker([sink(receiver.url, timeout_seconds=0.3)])
    receiver.mode, receiver.delay = "slow", 1.0
    for i in range(10):
        api.create_network(name=f"n{i}")
    started = time.monotonic()
    assert worker.step() == 10
    # One timeout per event would be 3 s; one per batch is 0.3 s.
    assert time.monotonic() - started < 2.0
    assert sorted(a for _, a in states(engine)) == [0] * 9 + [1]


def test_timeouts_are_retried_and_duplicates_carry_the_same_id(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker([sink(receiver.url, timeout_seconds=0.2)])
    receiver.mode, receiver.delay = "slow", 0.5
    api.create_network(name="slow")
    assert worker.step() == 1
    assert states(engine) == [("pending", 1)]  # the ack was lost: not delivered
    receiver.mode = "ok"
    time.sleep(0.25)
    drain(worker)
    assert states(engine) == [("delivered", 2)]
    # Received twice (the first ack was lost), one event id: the receiver drops the copy.
    assert len(receiver.received) == 2 and len(set(receiver.ids())) == 1


def test_dead_after_max_attempts_then_replayed(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker([sink(receiver.url)], events_max_attempts=2)
    receiver.mode = "fail"
    api.create_network(name="doomed")
    since = events.now() - dt.timedelta(seconds=5)
    worker.step()
    time.sleep(0.25)
    worker.step()
    assert states(engine) == [("dead", 2)]
    # A dead event does not hold its resource's later events back.
    net_id = api.get("/v2.0/networks").json()["networks"][0]["id"]
    api.put(f"/v2.0/networks/{net_id}", {"network": {"name": "later"}})
    receiver.mode = "ok"
    drain(worker)
    assert states(engine) == [("dead", 2), ("delivered", 1)]
    with worker.db.transaction(write=True) as session:
        assert events.replay(session, since) == 2
    drain(worker)
    assert states(engine) == [("delivered", 1), ("delivered", 1)]
    assert [e["action"] for e in receiver.received] == ["update", "create", "update"]


def test_redirects_are_not_followed_and_private_targets_refused(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    receiver.mode = "redirect"
    api.create_network(name="x")
    make_worker([sink(receiver.url)]).step()
    assert receiver.received == []
    with engine.connect() as conn:
        assert "HTTP 307" in conn.execute(select(Event.last_error)).scalar_one()
    receiver.mode = "ok"
    engine_reset(engine)
    guarded = make_worker([sink(receiver.url, allow_private=False)])
    guarded.step()
    assert receiver.received == []
    with engine.connect() as conn:
        assert "loopback" in conn.execute(select(Event.last_error)).scalar_one()
    for address in (
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",  # noqa: S104 - refused, not bound
        "::ffff:127.0.0.1",
    ):
        assert refused(address) is not None, address
    for address in ("10.1.2.3", "192.0.2.10", "2001:db8::1", "8.8.8.8"):
        assert refused(address) is None, address


def engine_reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(Event).values(next_attempt_at=events.now(), sinks="{}"))


def test_filters_choose_what_each_sink_gets(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    with receiving() as other:
        worker = make_worker(
            [
                sink(receiver.url, resource_types=["subnet"]),
                sink(other.url, name="projects", projects=["p1"], actions=["create"]),
            ]
        )
        net = api.create_network(name="a", project_id="p1")
        api.create_network(name="b", project_id="p2")
        api.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "a2"}})
        sub = api.post(
            "/v2.0/subnets",
            {
                "subnet": {
                    "network_id": net["id"],
                    "cidr": "10.0.0.0/24",
                    "ip_version": 4,
                    "project_id": "p1",
                }
            },
        )
        assert sub.status_code == 201, sub.text
        drain(worker)
        assert [e["event_type"] for e in receiver.received] == ["subnet.create"]
        assert [(e["event_type"], e["project_id"]) for e in other.received] == [
            ("network.create", "p1"),
            ("subnet.create", "p1"),
        ]
    # Every event is settled, even those no sink wanted.
    assert {s for s, _ in states(engine)} == {"delivered"}


def test_delivered_events_are_pruned_after_retention(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker([sink(receiver.url)], events_retention_seconds=60)
    api.create_network(name="old")
    api.create_network(name="new")
    receiver.mode = "fail"
    api.create_network(name="undelivered")
    receiver.mode = "ok"
    drain(worker)
    with engine.begin() as conn:
        old = events.now() - dt.timedelta(seconds=120)
        conn.execute(
            update(Event)
            .where(Event.seq.in_(select(Event.seq).order_by(Event.seq).limit(1)))
            .values(next_attempt_at=old)
        )
        conn.execute(
            update(Event)
            .where(
                Event.seq == select(Event.seq).order_by(Event.seq.desc()).limit(1).scalar_subquery()
            )
            .values(state="pending", next_attempt_at=old)
        )
    assert worker.prune() == 1
    assert [s for s, _ in states(engine)] == ["delivered", "pending"]


def test_concurrent_workers_keep_per_resource_order(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    ids = burst(api, networks=4, updates=6)
    workers = [make_worker([sink(receiver.url)], events_batch_size=3) for _ in range(3)]
    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # A worker may stop while another still holds a claim: finish the rest.
    drain(workers[0])
    assert len(receiver.unique()) == 28
    assert_in_order_per_resource(receiver.received)
    assert {e["resource_id"] for e in receiver.received} == set(ids)
    assert {s for s, _ in states(engine)} == {"delivered"}


def test_metrics_show_the_backlog_and_per_sink_counts_and_readyz_ignores_sinks(
    make_api: Callable[..., Api], receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    api = make_api(metrics_token=TOKEN)
    worker = make_worker([sink(receiver.url)])
    receiver.mode = "fail"
    api.create_network(name="a")
    api.create_network(name="b")
    worker.step()
    scrape = {"Authorization": f"Bearer {TOKEN}"}
    text = api.get("/metrics", headers=scrape).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("segmentd_event")
    }
    assert samples["segmentd_events_pending"] == 2
    assert samples["segmentd_events_dead"] == 0
    assert samples["segmentd_events_oldest_pending_age_seconds"] >= 0
    # The second was not tried once the sink failed in the batch.
    assert samples['segmentd_event_delivery_failures_total{sink="hook"}'] == 1
    assert samples['segmentd_event_deliveries_total{sink="hook"}'] == 0
    # A sink outage is not the service's: still ready.
    assert api.get("/readyz").status_code == 200
    receiver.mode = "ok"
    time.sleep(0.25)
    drain(worker)
    text = api.get("/metrics", headers=scrape).text
    assert 'segmentd_event_deliveries_total{sink="hook"} 2.0' in text
    assert "segmentd_events_pending 0.0" in text


def readme_receiver(repo_root: Path) -> Callable[..., bool]:
    """The README's receiver snippet, run as written."""
    text = (repo_root / "README.md").read_text()
    _, _, rest = text.partition("<!-- readme: receiver -->\n```python\n")
    code, _, _ = rest.partition("```")
    assert "def verify" in code
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def test_the_readme_receiver_snippet_checks_signatures(repo_root: Path) -> None:
    verify = readme_receiver(repo_root)
    config = make_settings("sqlite://", event_sinks=[sink("https://example.net/hook")])
    hook = Webhook(config.event_sinks[0])  # type: ignore[arg-type]
    document = {"id": "e1", "event_type": "network.create", "seq": 1}
    body = orjson.dumps(document)
    headers = hook.headers(document, body)
    assert verify([SECRET], headers, body)
    assert verify(["an-older-secret-0123"], headers, body)  # rotation: either key
    assert not verify(["a-stranger-secret-000"], headers, body)
    assert not verify([SECRET], headers, body + b" ")
    stale = Webhook(config.event_sinks[0], clock=lambda: time.time() - 3600)  # type: ignore[arg-type]
    assert not verify([SECRET], stale.headers(document, body), body)


def test_a_burst_on_one_resource_goes_out_in_one_batch_in_order(
    api: Api, engine: Engine, receiver: Receiver, make_worker: Callable[..., Worker]
) -> None:
    burst(api, networks=1, updates=20)
    worker = make_worker([sink(receiver.url)], events_batch_size=15)
    assert worker.step() == 15
    assert worker.step() == 6
    assert worker.step() == 0
    assert [e["seq"] for e in receiver.received] == sorted(e["seq"] for e in receiver.received)
    assert len(receiver.unique()) == 21
