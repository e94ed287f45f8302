"""Identity helpers for tests: make projects, users and tokens; a token client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from segmentd.api.runtime import Runtime
from segmentd.db.base import utcnow
from segmentd.db.identity import Project, User
from segmentd.identity import store, tokens
from tests.client import Api, in_process_client


class TokenApi(Api):
    """The test client sending ``X-Auth-Token`` (or nothing) instead of noauth headers."""

    def __init__(self, client: Any, token: str | None) -> None:
        super().__init__(client)
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {"X-Auth-Token": self.token} if self.token is not None else {}
        return {**base, **(extra or {})}

    def with_token(self, token: str | None) -> TokenApi:
        return TokenApi(self.client, token)


@dataclass
class Identity:
    """Direct access to the identity store of a runtime (setup only)."""

    runtime: Runtime

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.runtime.db.transaction(write=True) as session:
            yield session

    def project(self, name: str) -> Project:
        with self.session() as session:
            return store.create_project(session, name)

    def user(self, name: str, password: str | None, project: Project, *roles: str) -> User:
        with self.session() as session:
            user = store.create_user(session, self.runtime.passwords, name, password, project)
            for role in roles:
                store.add_role(session, user, project, role)
            return user

    def token(
        self,
        user: User,
        project: Project,
        ttl: int = 3600,
        kind: str = "token",
        now: dt.datetime | None = None,
    ) -> str:
        with self.session() as session:
            raw, _ = tokens.issue(session, user, project, now or utcnow(), ttl, kind=kind)
            return raw


client_for = in_process_client


def password_body(
    password: str, user: dict[str, Any], project: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {**user, "password": password}},
            }
        }
    }
    if project is not None:
        body["auth"]["scope"] = {"project": project}
    return body
