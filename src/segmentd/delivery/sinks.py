"""What a sink is, and building the configured ones."""

from __future__ import annotations

from typing import Any, Protocol

from segmentd.config import AmqpSink, EventFilter, Settings, WebhookSink
from segmentd.db.events import Event


class DeliveryFailed(Exception):
    """A sink could not deliver (or could not be sure it delivered): retry later."""


class Sink(Protocol):
    name: str

    @property
    def config(self) -> EventFilter: ...

    def send(self, document: dict[str, Any]) -> None:
        """Deliver, or raise (``DeliveryFailed`` or any error): the event is retried."""

    def close(self) -> None: ...


def wants(sink: Sink, event: Event) -> bool:
    return sink.config.matches(event.resource_type, event.action, event.project_id)


def build(settings: Settings) -> list[Sink]:
    """The sinks of ``event_sinks``, in their configured order."""
    from segmentd.delivery import amqp, webhook

    out: list[Sink] = []
    for config in settings.event_sinks:
        if isinstance(config, WebhookSink):
            out.append(webhook.Webhook(config))
        elif isinstance(config, AmqpSink):
            out.append(amqp.Notifications(config))
    return out
