"""Unexpected failures answer 500 with a request id and nothing else."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from segmentd.services import segments
from tests.client import Api
from tests.support import LEAKS


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (RuntimeError("boom at /work/main/src/segmentd/x.py SELECT * FROM segments"), 500),
        (IntegrityError("INSERT INTO segments", {}, Exception("uq_segments_type_physnet_id")), 409),
        (OperationalError("SELECT 1", {}, Exception("psycopg connection refused")), 503),
    ],
)
def test_failures_do_not_leak(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    exc: Exception,
    status: int,
) -> None:
    def explode(*_: Any, **__: Any) -> Any:
        raise exc

    monkeypatch.setattr(segments, "list_", explode)
    with caplog.at_level(logging.INFO, logger="segmentd.faults"):
        resp = api.get("/v2.0/segments")
    assert resp.status_code == status
    assert not LEAKS.search(resp.text), resp.text
    rid = resp.headers["X-Openstack-Request-Id"]
    if status == 500:
        assert resp.json()["NeutronError"]["message"] == f"Internal server error (request id {rid})"
        # The detail is in the server log, under the same request id.
        assert any(rid in r.getMessage() and r.exc_info for r in caplog.records)
    if status == 503:
        assert resp.headers["Retry-After"]


def test_unknown_path_and_method(api: Api) -> None:
    missing = api.get("/v2.0/nothing")
    assert missing.status_code == 404
    assert missing.json()["NeutronError"]["type"] == "HTTPNotFound"
    wrong = api.request("PATCH", "/v2.0/segments")
    assert wrong.status_code == 405
    assert "NeutronError" in wrong.json()
