"""Request logs and Prometheus metrics.

One middleware does both, once per HTTP request, after the response: it
writes one structured log line (request id, principal, method, route
template, status, duration) and updates the request counter and latency
histogram by route template, method and status.  Templates, never raw paths,
keep label cardinality bounded and keep IDs out of the metrics.

Metrics work in one process or in several.  ``segmentd serve --workers N``
(N > 1) sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, so
prometheus-client keeps each worker's values in files there and any worker
answering a scrape aggregates all of them.  Gauges that only make sense for
live workers use the ``livesum`` mode; a scrape first drops the files of
workers that have died (uvicorn's supervisor has no exit hook to do it).
Figures that come from the database (allocation pool usage) are computed
at scrape time by the worker answering, never stored in the files.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentd.api.wire import REQUEST_ID_HEADER
from segmentd.services import events, usage

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

# The request id of the request being served, for every log record it causes
# (faults.py, services): set by the middleware, read by the formatters.
_ID_HEADER = REQUEST_ID_HEADER.lower().encode()
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "segmentd_request_id", default=None
)

access_log = logging.getLogger("segmentd.access")

# Probes and scrapes would drown the request log; they log at DEBUG.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
LABELS = ("method", "route", "status")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# Logs ------------------------------------------------------------------------------


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
    rid = REQUEST_ID.get()
    if rid and "request_id" not in fields:
        fields["request_id"] = rid
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_record_fields(record),
        }
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable: the classic line, then ``key=value`` fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in _record_fields(record).items())
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # keep tracebacks after the fields
        return f"{head} {fields}{sep}{tail}"


def log_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """``logging.config.dictConfig`` for the server (uvicorn applies it in each worker)."""
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    level = level.upper()
    handler = ["default"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "segmentd": {"handlers": handler, "level": level, "propagate": False},
            "uvicorn": {"handlers": handler, "level": level, "propagate": False},
            # Replaced by segmentd.access, which knows the route and the principal.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": handler, "level": "WARNING"},
    }


# Metrics ---------------------------------------------------------------------------


# Pool gauges are sampled by requests at most this often (and on every scrape).
POOL_SAMPLE_S = 1.0


class Metrics:
    """The process's metric objects (module state in prometheus-client's files)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # Multi-process: values live in files and are read back by a
        # MultiProcessCollector, so the objects join no registry.
        self.registry = None if self.multiprocess else CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "segmentd_http_requests", "HTTP requests answered", LABELS, registry=reg
        )
        self.latency = Histogram(
            "segmentd_http_request_duration_seconds",
            "Time to answer an HTTP request",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.pool_checked_out = Gauge(
            "segmentd_db_pool_checked_out",
            "Database connections in use (all live workers)",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "segmentd_db_pool_size",
            "Database pool size (all live workers)",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._pool_sampled = -POOL_SAMPLE_S

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "OTHER", route, status)
        children = self._children.get(key)
        if children is None:  # label sets are bounded: methods x route templates x statuses
            labels = (key[0], route, str(status))
            children = self._children[key] = (
                self.requests.labels(*labels),
                self.latency.labels(*labels),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_pool_now_and_then(self, engine: Engine) -> None:
        """``observe_pool`` at most every ``POOL_SAMPLE_S`` (a gauge, not a count)."""
        now = time.monotonic()
        if now - self._pool_sampled >= POOL_SAMPLE_S:
            self._pool_sampled = now
            self.observe_pool(engine)

    def observe_pool(self, engine: Engine) -> None:
        pool: Any = engine.pool
        if hasattr(pool, "checkedout") and hasattr(pool, "size"):
            self.pool_checked_out.set(pool.checkedout())
            self.pool_size.set(pool.size())

    def render(self, engine: Engine, session: Session) -> bytes:
        """The exposition: this process's (or every worker's) metrics, then the pools."""
        self.observe_pool(engine)
        if self.multiprocess:
            reap_dead_workers(Path(os.environ[MULTIPROC_ENV]))
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            own = generate_latest(registry)
        else:
            assert self.registry is not None  # noqa: S101 - set whenever not multiprocess
            own = generate_latest(self.registry)
        return own + generate_latest(_pool_registry(session))


class _Families(Collector):
    def __init__(self, families: Iterable[GaugeMetricFamily | CounterMetricFamily]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        return self.families


def _event_families(session: Session) -> list[GaugeMetricFamily | CounterMetricFamily]:
    """The change-event outbox, read from the database: every delivery
    worker's work shows, whichever process did it."""
    backlog = events.backlog(session)
    out: list[GaugeMetricFamily | CounterMetricFamily] = [
        GaugeMetricFamily(
            "segmentd_events_pending", "Change events not yet delivered", value=backlog.pending
        ),
        GaugeMetricFamily(
            "segmentd_events_dead",
            "Change events that ran out of attempts (segmentd events replay)",
            value=backlog.dead,
        ),
        GaugeMetricFamily(
            "segmentd_events_oldest_pending_age_seconds",
            "Age of the oldest undelivered change event (0: none)",
            value=backlog.oldest_pending_age_s,
        ),
    ]
    delivered = CounterMetricFamily(
        "segmentd_event_deliveries",
        "Change events delivered, per sink",
        labels=["sink"],
    )
    failed = CounterMetricFamily(
        "segmentd_event_delivery_failures",
        "Failed delivery attempts of change events, per sink",
        labels=["sink"],
    )
    for name, ok, failures in events.sink_counters(session):
        delivered.add_metric([name], ok)
        failed.add_metric([name], failures)
    return [*out, delivered, failed]


def _pool_registry(session: Session) -> CollectorRegistry:
    ids = GaugeMetricFamily(
        "segmentd_segmentation_ids",
        "Segmentation IDs in the configured ranges, used or free, per type and physical network",
        labels=["network_type", "physical_network", "state"],
    )
    size = GaugeMetricFamily(
        "segmentd_segmentation_id_pool_size",
        "Segmentation IDs in the union of the ranges, per type and physical network",
        labels=["network_type", "physical_network"],
    )
    pools = usage.pool_usage(session)
    for pool in pools:
        physnet = pool.physical_network or ""
        ids.add_metric([pool.network_type, physnet, "used"], pool.used)
        ids.add_metric([pool.network_type, physnet, "free"], pool.free)
        size.add_metric([pool.network_type, physnet], pool.size)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([ids, size, *_event_families(session)]))
    return registry


_LIVE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def reap_dead_workers(directory: Path) -> None:
    """Forget the live gauges of workers that have exited (killed or restarted)."""
    pids = {int(m.group(1)) for f in directory.iterdir() if (m := _LIVE_FILE.match(f.name))}
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_multiproc_dir(directory: Path) -> None:
    """Empty the metric files of a previous run (prometheus-client requires it)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


# The middleware ----------------------------------------------------------------------


class ObservabilityMiddleware:
    """Names, logs and measures each request: the outermost middleware.

    Every request gets an id in ``scope["state"]`` (for the error mapper,
    the guards and the audit trail) and in the ``X-Openstack-Request-Id``
    response header, and one access-log line and metrics sample under it.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, engine: Engine) -> None:
        self.app = app
        self.metrics = metrics
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        rid = state["request_id"] = f"req-{uuid.uuid4()}"
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 500  # if the app fails before answering, the boundary answers 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                if not any(k.lower() == _ID_HEADER for k, _ in headers):
                    headers.append((_ID_HEADER, rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - started
            self._finish(scope, state, status, elapsed)
            REQUEST_ID.reset(token)

    def _finish(self, scope: Scope, state: dict[str, Any], status: int, elapsed: float) -> None:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        method = str(scope.get("method", ""))
        self.metrics.observe(method, route, status, elapsed)
        self.metrics.observe_pool_now_and_then(self.engine)
        principal = state.get("principal")
        level = logging.DEBUG if scope.get("path") in QUIET_PATHS else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        access_log.log(
            level,
            "request",
            extra={
                "fields": {
                    "request_id": state.get("request_id"),
                    "user_id": getattr(principal, "subject", None),
                    "project_id": getattr(principal, "project_id", None),
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                }
            },
        )
