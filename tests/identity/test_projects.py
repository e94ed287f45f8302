"""GET /identity/v3/projects[/{id}]: what openstackclient's ``--project`` lookups call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segmentd.api.runtime import Runtime
from tests.identity_support import Identity, TokenApi, client_for


@pytest.fixture
def web(token_app: Any) -> Iterator[TokenApi]:
    with client_for(token_app) as client:
        yield TokenApi(client, None)


@pytest.fixture
def people(token_runtime: Runtime) -> dict[str, Any]:
    ident = Identity(token_runtime)
    admin_project, demo, other = (
        ident.project("admin"),
        ident.project("demo"),
        ident.project("other"),
    )
    admin = ident.user("admin", None, admin_project, "admin")
    bob = ident.user("bob", None, demo, "member")
    return {
        "admin": ident.token(admin, admin_project),
        "bob": ident.token(bob, demo),
        "demo": demo.id,
        "other": other.id,
    }


def test_admin_finds_projects_by_id_and_name(web: TokenApi, people: dict[str, Any]) -> None:
    admin = web.with_token(people["admin"])
    shown = admin.get(f"/identity/v3/projects/{people['other']}")
    assert shown.status_code == 200
    assert shown.json()["project"]["name"] == "other"
    assert shown.json()["project"]["domain_id"] == "default"
    listed = admin.get("/identity/v3/projects", params={"name": "demo"}).json()["projects"]
    assert [p["id"] for p in listed] == [people["demo"]]
    assert {p["name"] for p in admin.get("/identity/v3/projects").json()["projects"]} == {
        "admin",
        "demo",
        "other",
    }
    missing = admin.get("/identity/v3/projects/nope")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message", "title"}


def test_member_sees_only_its_own_project(web: TokenApi, people: dict[str, Any]) -> None:
    bob = web.with_token(people["bob"])
    assert bob.get(f"/identity/v3/projects/{people['demo']}").json()["project"]["name"] == "demo"
    # Another project, existing or not: the same 403, so nothing leaks.
    assert bob.get(f"/identity/v3/projects/{people['other']}").status_code == 403
    assert bob.get("/identity/v3/projects/nope").status_code == 403
    assert [p["name"] for p in bob.get("/identity/v3/projects").json()["projects"]] == ["demo"]
    assert bob.get("/identity/v3/projects", params={"name": "other"}).json()["projects"] == []


def test_project_lookup_needs_a_token(web: TokenApi, people: dict[str, Any]) -> None:
    assert web.get(f"/identity/v3/projects/{people['demo']}").status_code == 401
    assert web.get("/identity/v3/projects").status_code == 401
