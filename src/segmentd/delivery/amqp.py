"""AMQP sink: Neutron's notifications, sent with oslo.messaging (extra ``events``).

Each event becomes the ``<resource>.<action>.end`` notification Neutron
sends after the change (``network.create.end``, ``subnet.delete.end``...),
priority ``INFO`` on ``<topic>.info``, with Neutron's payload: ``{"network":
{...}}``, and for deletes ``{"network_id": id, "network": {...}}`` too.  The
message id is the event id.  Consumers of Neutron's notifications
(Ceilometer, Designate, operators' tools) work unchanged.

Neutron sends nothing for a host's reachable segments; their events go out
in the same pattern, ``segment_host_mapping.create.end`` with
``{"segment_host_mapping": {"host": ..., "segment_ids": [...]}}``, and no
``<resource>_id`` key for a delete (the mapping has no id; the host is in
the body).

oslo.messaging's ``Notifier`` logs and forgets a failed send; this sink
sends through the transport itself so that a failure is retried.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

from segmentd.config import AmqpSink
from segmentd.delivery.sinks import DeliveryFailed

PRIORITY = "info"


def notification(document: dict[str, Any], publisher_id: str) -> dict[str, Any]:
    """The message oslo.messaging's v2 notifier would send for this event."""
    kind, action = document["resource_type"], document["action"]
    view = document["after"] if document["after"] is not None else document["before"]
    payload: dict[str, Any] = {kind: view}
    if action == "delete" and kind != "segment_host_mapping":
        payload[f"{kind}_id"] = document["resource_id"]
    return {
        "message_id": document["id"],
        "publisher_id": publisher_id,
        "event_type": f"{kind}.{action}.end",
        "priority": PRIORITY.upper(),
        "payload": payload,
        "timestamp": str(dt.datetime.now(dt.UTC).replace(tzinfo=None)),
    }


def context(document: dict[str, Any]) -> dict[str, Any]:
    project = document["project_id"]
    return {
        "request_id": document["request_id"],
        "global_request_id": None,
        "project_id": project,
        "tenant_id": project,
        "user_id": None,
        "is_admin": True,
    }


class Notifications:
    def __init__(self, config: AmqpSink) -> None:
        self.config = config
        self.name = config.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eventlet (deprecated), imported by oslo
            import oslo_messaging
            from oslo_config import cfg

        conf = cfg.ConfigOpts()
        conf([], project="segmentd", default_config_files=[])
        self._messaging = oslo_messaging
        self._transport = oslo_messaging.get_notification_transport(
            conf, url=config.transport_url.get_secret_value()
        )
        self._target = oslo_messaging.Target(topic=f"{config.topic}.{PRIORITY}")

    def send(self, document: dict[str, Any]) -> None:
        message = notification(document, self.config.publisher_id)
        try:
            self._transport._send_notification(
                self._target, context(document), message, version=2.0, retry=self.config.retry
            )
        except Exception as exc:
            raise DeliveryFailed(f"notification not sent: {exc!r}"[:200]) from None

    def close(self) -> None:
        self._transport.cleanup()
