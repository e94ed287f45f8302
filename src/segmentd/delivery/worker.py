"""The delivery loop: claim due events, send them to their sinks, record the outcome.

At least once: an event is marked delivered only after every sink that
wants it acknowledged it (a 2xx, a broker's confirm), in a transaction after
the sends; a worker killed in between leaves its claimed events pending,
and they come due again when their lease ends.  Per sink, an event already
delivered there is not sent again on a retry.  In order per resource: see
``services.events.claim``.

Several workers may run at once on PostgreSQL (claims skip locked rows); on
SQLite a lock file next to the database lets only one run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url

from segmentd.config import Settings
from segmentd.db.base import Database
from segmentd.delivery.sinks import Sink, build, wants
from segmentd.services import events

log = logging.getLogger("segmentd.events")
PRUNE_INTERVAL_S = 60.0


class WorkerBusy(Exception):
    """Another delivery worker holds this SQLite database's lock file."""


@contextlib.contextmanager
def single_worker(settings: Settings) -> Iterator[None]:
    """On SQLite, the one worker: an exclusive lock on ``<database>.events-lock``."""
    if not settings.is_sqlite():
        yield
        return
    database = make_url(settings.database_url).database or ""
    path = Path(database if database and database != ":memory:" else "segmentd.db")
    handle: IO[Any] = open(f"{path}.events-lock", "a+")  # noqa: SIM115 - held for the run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerBusy(f"another delivery worker runs on {path}") from None
        yield
    finally:
        handle.close()


class Worker:
    def __init__(self, settings: Settings, db: Database, sinks: list[Sink] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.sinks = build(settings) if sinks is None else sinks
        self.retry = events.Retry(
            settings.events_max_attempts,
            settings.events_retry_base_seconds,
            settings.events_retry_max_seconds,
        )
        self._pruned_at = 0.0

    def step(self) -> int:
        """One batch: the number of events attempted (0: nothing was due)."""
        s = self.settings
        with self.db.transaction(write=True) as session:
            claimed = events.claim(session, s.events_batch_size, s.events_lease_seconds)
        if not claimed:
            return 0
        outcomes = []
        counters: dict[str, tuple[int, int]] = {}
        # Half the lease for sending: the results are recorded well before
        # another worker may take these events again.
        send_until = time.monotonic() + s.events_lease_seconds / 2
        down: set[str] = set()
        for event in claimed:
            if time.monotonic() > send_until:
                outcomes.append(
                    (event, events.Outcome(events.sink_states(event), False, "", False))
                )
                continue
            outcome = self.deliver(event, counters, down)
            outcomes.append((event, outcome))
        with self.db.transaction(write=True) as session:
            for event, outcome in outcomes:
                state = events.finish(session, event, outcome, self.retry)
                if state == "dead":
                    log.error("event %s (seq %s) is dead: %s", event.id, event.seq, outcome.error)
            events.count(session, counters)
        return len(claimed)

    def deliver(
        self, event: Any, counters: dict[str, tuple[int, int]], down: set[str] | None = None
    ) -> events.Outcome:
        """Send ``event`` to every sink that wants it and does not have it yet.

        ``down``: sinks that failed earlier in this batch; they are not tried
        again in it (a sink that times out costs one timeout per batch, not
        one per event), and an event held back only by them counts no attempt.
        """
        down = set() if down is None else down
        states = events.sink_states(event)
        document = events.document(event)
        outcome = events.Outcome(states)
        tried = failed = 0
        for sink in self.sinks:
            if not wants(sink, event):
                continue
            state = states.get(sink.name, {})
            if state.get("state") == "delivered":
                continue
            if sink.name in down:
                outcome.delivered = False
                continue
            tried += 1
            attempts = int(state.get("attempts", 0)) + 1
            ok, failures = counters.get(sink.name, (0, 0))
            try:
                sink.send(document)
            except Exception as exc:
                reason = str(exc)[:200] or type(exc).__name__
                states[sink.name] = {"state": "failed", "attempts": attempts, "error": reason}
                outcome.delivered = False
                outcome.error = f"{sink.name}: {reason}"
                counters[sink.name] = (ok, failures + 1)
                down.add(sink.name)
                failed += 1
                log.warning("event %s to %s failed: %s", event.id, sink.name, reason)
                continue
            states[sink.name] = {"state": "delivered", "attempts": attempts}
            counters[sink.name] = (ok + 1, failures)
        outcome.attempted = tried > 0 or outcome.delivered
        return outcome

    def prune(self) -> int:
        with self.db.transaction(write=True) as session:
            return events.prune(session, self.settings.events_retention_seconds)

    def run(self, stop: threading.Event, once: bool = False) -> None:
        """Until ``stop`` is set (``once``: until nothing is due)."""
        while not stop.is_set():
            try:
                done = self.step()
                if time.monotonic() - self._pruned_at > PRUNE_INTERVAL_S:
                    self._pruned_at = time.monotonic()
                    pruned = self.prune()
                    if pruned:
                        log.info("pruned %s delivered events", pruned)
            except Exception:
                log.exception("delivery step failed")
                done = 0
            if done:
                continue
            if once:
                return
            stop.wait(self.settings.events_poll_seconds)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
