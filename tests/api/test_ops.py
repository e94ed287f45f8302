"""Readiness, metrics, request logs and allocation usage, in process."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from segmentd.api.observability import REQUEST_ID, JsonFormatter, TextFormatter
from segmentd.db import migrate
from segmentd.main import create_app
from tests.client import Api
from tests.conftest import make_settings

TOKEN = "scrape-token-0123456789"  # noqa: S105 - a test value


def test_healthz_and_readyz(api: Api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_readyz_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0004")
    with Api.for_app(create_app(make_settings(url, readiness_cache_seconds=0))) as api:
        resp = api.get("/readyz")
        assert resp.status_code == 503
        assert resp.json() == {"status": "unavailable", "reason": "database not migrated"}
        migrate.upgrade(url)
        assert api.get("/readyz").status_code == 200


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_need_the_token_or_loopback(make_api: Callable[..., Api]) -> None:
    with_token = make_api(metrics_token=TOKEN)
    assert with_token.get("/metrics").status_code == 403
    assert with_token.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert (
        with_token.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )
    # No token configured: the test client is not a loopback address.
    assert make_api().get("/metrics").status_code == 403


def test_metrics_expose_requests_latency_pool_and_allocation(make_api: Callable[..., Api]) -> None:
    api = make_api(metrics_token=TOKEN)
    net = api.create_network(name="n")
    api.create_segment(
        net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=1500
    )
    api.get(f"/v2.0/networks/{net['id']}")
    api.get("/v2.0/no-such-thing")
    resp = api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.headers["content-type"].startswith("text/plain")
    samples = _samples(resp.text)
    assert (
        samples['segmentd_http_requests_total{method="POST",route="/v2.0/networks",status="201"}']
        == 1
    )
    assert (
        samples[
            'segmentd_http_requests_total{method="GET",route="/v2.0/networks/{network_id}",status="200"}'
        ]
        == 1
    )
    assert (
        samples['segmentd_http_requests_total{method="GET",route="<unmatched>",status="404"}'] == 1
    )
    assert (
        samples[
            'segmentd_http_request_duration_seconds_count{method="POST",route="/v2.0/segments",status="201"}'
        ]
        == 1
    )
    assert (
        'segmentd_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v2.0/segments",status="201"}'
        in samples
    )
    assert samples["segmentd_db_pool_size"] >= 1
    assert "segmentd_db_pool_checked_out" in samples
    # Default ranges: physnet1 and physnet2 1000-2999 (VLAN), full 24-bit VXLAN.
    assert (
        samples[
            'segmentd_segmentation_ids{network_type="vlan",physical_network="physnet1",state="used"}'
        ]
        == 1
    )
    assert (
        samples[
            'segmentd_segmentation_ids{network_type="vlan",physical_network="physnet1",state="free"}'
        ]
        == 1999
    )
    assert (
        samples[
            'segmentd_segmentation_ids{network_type="vlan",physical_network="physnet2",state="used"}'
        ]
        == 0
    )
    assert (
        samples['segmentd_segmentation_ids{network_type="vxlan",physical_network="",state="used"}']
        == 1
    )
    assert (
        samples['segmentd_segmentation_id_pool_size{network_type="vxlan",physical_network=""}']
        == 2**24 - 1
    )
    # Raw IDs never become labels.
    assert net["id"] not in resp.text


def test_overlapping_ranges_count_once(make_api: Callable[..., Api]) -> None:
    api = make_api(metrics_token=TOKEN)
    resp = api.post(
        "/v2.0/network_segment_ranges",
        {
            "network_segment_range": {
                "network_type": "vlan",
                "physical_network": "physnet1",
                "minimum": 2900,
                "maximum": 3100,
                "shared": False,
                "project_id": "p1",
            }
        },
    )
    assert resp.status_code == 201, resp.text
    samples = _samples(api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text)
    assert (
        samples[
            'segmentd_segmentation_id_pool_size{network_type="vlan",physical_network="physnet1"}'
        ]
        == 2101
    )


def test_range_usage_lists_used_free_and_next_free(api: Api) -> None:
    net = api.create_network(name="n", **{"provider:network_type": "local"})
    for vid in (1000, 1001, 1003):
        api.create_segment(
            net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=vid
        )
    resp = api.get(
        "/v2.0/network-segment-range-usage",
        params={"network_type": "vlan", "physical_network": "physnet1"},
    )
    assert resp.status_code == 200, resp.text
    [row] = resp.json()["network_segment_range_usage"]
    assert (row["minimum"], row["maximum"], row["size"], row["used"], row["free"]) == (
        1000,
        2999,
        2000,
        3,
        1997,
    )
    assert row["next_free"] == [1002, 1004, 1005, 1006, 1007]
    two = api.get(
        "/v2.0/network-segment-range-usage",
        params={"physical_network": "physnet1", "next_free": 2, "fields": ["id", "next_free"]},
    )
    assert two.json()["network_segment_range_usage"] == [
        {"id": row["id"], "next_free": [1002, 1004]}
    ]
    assert api.get("/v2.0/network-segment-range-usage", params={"next_free": 99}).status_code == 400
    paged = api.get("/v2.0/network-segment-range-usage", params={"limit": 1}).json()
    assert (
        len(paged["network_segment_range_usage"]) == 1
        and paged["network_segment_range_usage_links"]
    )
    member = api.as_("p", "member")
    assert (
        member.get("/v2.0/network-segment-range-usage").json()["network_segment_range_usage"] == []
    )


def test_one_log_line_per_request_with_route_template_and_principal(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    net = api.as_("proj-a", "admin").create_network(name="n")
    with caplog.at_level(logging.INFO, logger="segmentd.access"):
        resp = api.as_("proj-a", "admin").get(
            f"/v2.0/networks/{net['id']}", params={"fields": "id"}
        )
        api.get("/healthz")  # probes log at DEBUG only
    [record] = [r for r in caplog.records if r.name == "segmentd.access"]
    fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
    assert fields["request_id"] == resp.headers["X-Openstack-Request-Id"]
    assert fields["route"] == "/v2.0/networks/{network_id}"
    assert (fields["method"], fields["status"]) == ("GET", 200)
    assert (fields["user_id"], fields["project_id"]) == ("noauth", "proj-a")
    assert fields["duration_ms"] >= 0
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request" and line["route"] == fields["route"]
    assert line["request_id"] == fields["request_id"] and line["level"] == "info"
    assert net["id"] not in json.dumps(line)  # the template, never the raw path


def test_formatters_attach_the_current_request_id() -> None:
    record = logging.LogRecord(
        "segmentd.faults", logging.ERROR, __file__, 1, "boom %s", ("x",), None
    )
    token = REQUEST_ID.set("req-123")
    try:
        assert json.loads(JsonFormatter().format(record))["request_id"] == "req-123"
        assert TextFormatter().format(record).endswith("boom x request_id=req-123")
    finally:
        REQUEST_ID.reset(token)
