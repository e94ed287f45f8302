"""Helpers for the console's tests: users to log in as, a logged-in client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from segmentd.api.runtime import Runtime
from tests.identity_support import Identity

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test user's password
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class People:
    """An admin in project ``admin``, a member of ``alpha`` and one of ``beta``."""

    admin_project: str
    alpha: str
    beta: str


def make_people(runtime: Runtime) -> People:
    ids = Identity(runtime)
    admin_project = ids.project("admin")
    alpha, beta = ids.project("alpha"), ids.project("beta")
    ids.user("root", PASSWORD, admin_project, "admin")
    ids.user("alice", PASSWORD, alpha, "member")
    ids.user("bob", PASSWORD, beta, "member")
    return People(admin_project.id, alpha.id, beta.id)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: TestClient, user: str, project: str, password: str = PASSWORD) -> Any:
    page = client.get("/ui/login")
    assert page.status_code == 200
    return client.post(
        "/ui/login",
        data={
            "csrf": csrf_of(page.text),
            "username": user,
            "password": password,
            "project": project,
            "next": "/ui/",
        },
        headers={"Origin": str(client.base_url).rstrip("/")},
        follow_redirects=False,
    )


def logged_in(app: Any, user: str, project: str) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False, base_url="http://testserver")
    answer = login(client, user, project)
    assert answer.status_code == 303, answer.text
    return client


def form_post(client: TestClient, path: str, data: dict[str, str], page: str = "/ui/") -> Any:
    """A form POST as the browser sends it: this origin, the page's CSRF token."""
    token = csrf_of(client.get(page).text)
    return client.post(
        path,
        data={"csrf": token, **data},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
