"""A thin API client for tests: roles and project travel as noauth headers."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

ADMIN_PROJECT = "admin-project"


def in_process_client(app: Any) -> TestClient:
    """In-process HTTP to ``app``; server errors come back as 500s, as over the wire."""
    return TestClient(app, raise_server_exceptions=False)


class Api:
    """Wraps an httpx-compatible client; ``as_`` returns a view for another caller."""

    def __init__(
        self, client: httpx.Client, project: str = ADMIN_PROJECT, roles: str = "admin"
    ) -> None:
        self.client = client
        self.project = project
        self.roles = roles

    @classmethod
    def for_app(cls, app: Any) -> Api:
        return cls(in_process_client(app))

    @classmethod
    def for_url(cls, base_url: str) -> Api:
        return cls(httpx.Client(base_url=base_url, timeout=30))

    def as_(self, project: str, roles: str) -> Api:
        return Api(self.client, project, roles)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"X-Project-Id": self.project, "X-Roles": self.roles, **(extra or {})}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs["headers"] = self.headers(kwargs.get("headers"))
        return self.client.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    # Shortcuts used by most tests -------------------------------------------------

    def create_network(self, **attrs: Any) -> dict[str, Any]:
        resp = self.post("/v2.0/networks", {"network": attrs})
        assert resp.status_code == 201, resp.text
        network: dict[str, Any] = resp.json()["network"]
        return network

    def create_segment(self, network_id: str, **attrs: Any) -> dict[str, Any]:
        resp = self.post("/v2.0/segments", {"segment": {"network_id": network_id, **attrs}})
        assert resp.status_code == 201, resp.text
        segment: dict[str, Any] = resp.json()["segment"]
        return segment

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
