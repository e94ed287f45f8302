"""Neutron's notifications on RabbitMQ, received by an oslo.messaging listener.

Needs RabbitMQ on 127.0.0.1:5672 (guest/guest; ``.ci/run`` starts it);
``SEGMENTD_TEST_NO_RABBITMQ=1`` skips these tests on purpose.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from segmentd.api.runtime import Runtime
from segmentd.db.events import Event
from segmentd.delivery.worker import Worker
from tests.client import Api
from tests.conftest import make_settings

URL = "rabbit://guest:guest@127.0.0.1:5672/"

if os.environ.get("SEGMENTD_TEST_NO_RABBITMQ") == "1":
    pytest.skip("SEGMENTD_TEST_NO_RABBITMQ=1", allow_module_level=True)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet (deprecated), imported by oslo
    import oslo_messaging
    from oslo_config import cfg


def _rabbit_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module", autouse=True)
def _rabbitmq() -> None:
    assert _rabbit_up(), (
        "RabbitMQ is not answering on 127.0.0.1:5672 (SEGMENTD_TEST_NO_RABBITMQ=1 skips)"
    )


class Endpoint:
    def __init__(self) -> None:
        self.got: queue.Queue[dict[str, Any]] = queue.Queue()

    def info(
        self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any
    ) -> None:
        self.got.put(
            {
                "ctxt": ctxt,
                "publisher_id": publisher_id,
                "event_type": event_type,
                "payload": payload,
                "metadata": metadata,
            }
        )


@pytest.fixture
def listener() -> Iterator[tuple[str, Endpoint]]:
    # A topic of its own: no other consumer of this broker takes our messages.
    topic = f"notifications_test_{uuid.uuid4().hex[:8]}"
    conf = cfg.ConfigOpts()
    conf([], project="segmentd-test", default_config_files=[])
    transport = oslo_messaging.get_notification_transport(conf, url=URL)
    endpoint = Endpoint()
    server = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(topic=topic)], [endpoint], executor="threading"
    )
    server.start()
    try:
        yield topic, endpoint
    finally:
        server.stop()
        server.wait()
        transport.cleanup()


def amqp_worker(runtime: Runtime, database_url: str, topic: str, **sink: Any) -> Worker:
    settings = make_settings(
        database_url,
        event_sinks=[
            {"type": "amqp", "name": "neutron", "transport_url": URL, "topic": topic, **sink}
        ],
        events_retry_base_seconds=0.05,
        events_retry_max_seconds=0.1,
    )
    return Worker(settings, runtime.db)


def test_listener_receives_network_create_end_in_neutrons_shape(
    api: Api,
    engine: Engine,
    runtime: Runtime,
    database_url: str,
    listener: tuple[str, Endpoint],
) -> None:
    topic, endpoint = listener
    created = api.post("/v2.0/networks", {"network": {"name": "notified", "project_id": "p1"}})
    assert created.status_code == 201
    net = created.json()["network"]
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    worker = amqp_worker(runtime, database_url, topic)
    try:
        worker.run(threading.Event(), once=True)
    finally:
        worker.close()
    first = endpoint.got.get(timeout=20)
    assert first["event_type"] == "network.create.end"
    assert first["publisher_id"] == "network.segmentd"
    assert first["payload"] == {"network": net}
    assert first["ctxt"]["project_id"] == "p1"
    assert first["ctxt"]["request_id"] == created.headers["X-Openstack-Request-Id"]
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(Event).order_by(Event.seq))]
    assert first["metadata"]["message_id"] == ids[0]
    second = endpoint.got.get(timeout=20)
    assert second["event_type"] == "network.delete.end"
    assert second["payload"] == {"network_id": net["id"], "network": net}
    with engine.connect() as conn:
        assert [r.state for r in conn.execute(select(Event))] == ["delivered", "delivered"]


def test_an_unreachable_broker_is_a_failure_retried(
    api: Api, engine: Engine, runtime: Runtime, database_url: str
) -> None:
    api.create_network(name="x")
    dead = make_settings(
        database_url,
        event_sinks=[
            {
                "type": "amqp",
                "name": "neutron",
                "transport_url": "rabbit://guest:guest@127.0.0.1:1/",
                "retry": 0,
            }
        ],
    )
    worker = Worker(dead, runtime.db)
    try:
        assert worker.step() == 1
    finally:
        worker.close()
    with engine.connect() as conn:
        row = conn.execute(select(Event)).one()
    assert (row.state, row.attempts) == ("pending", 1)
    assert "neutron" in row.last_error
