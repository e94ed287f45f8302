"""Keystone v3 login, token validation, revocation, expiry and storage at rest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from segmentd.api.runtime import Runtime
from segmentd.main import create_app
from tests.identity_support import Identity, TokenApi, client_for, password_body

DEFAULT = {"name": "Default"}
PASSWORD = "correct horse battery staple"  # noqa: S105 - test data


@pytest.fixture
def ident(token_runtime: Runtime) -> Identity:
    return Identity(token_runtime)


@pytest.fixture
def web(token_app: Any) -> Iterator[TokenApi]:
    with client_for(token_app) as client:
        yield TokenApi(client, None)


@pytest.fixture
def alice(ident: Identity) -> dict[str, Any]:
    project = ident.project("demo")
    user = ident.user("alice", PASSWORD, project, "member")
    return {"user": user, "project": project}


def login(web: TokenApi, password: str = PASSWORD, **kwargs: Any) -> Any:
    user = kwargs.pop("user", {"name": "alice", "domain": DEFAULT})
    project = kwargs.pop("project", {"name": "demo", "domain": DEFAULT})
    return web.client.post("/identity/v3/auth/tokens", json=password_body(password, user, project))


def test_version_discovery_has_keystone_shape(web: TokenApi) -> None:
    version = web.client.get("/identity/v3").json()["version"]
    assert version["id"] == "v3.14"
    assert version["status"] == "stable"
    assert version["links"][0]["rel"] == "self"
    assert version["links"][0]["href"].endswith("/identity/v3/")
    assert version["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"
    resp = web.client.get("/identity")
    assert resp.status_code == 300
    assert resp.json()["versions"]["values"] == [version]


def test_password_login_by_names(web: TokenApi, alice: dict[str, Any]) -> None:
    resp = login(web)
    assert resp.status_code == 201, resp.text
    raw = resp.headers["X-Subject-Token"]
    assert len(raw) >= 43
    token = resp.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["id"] == alice["user"].id
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"] == {
        "id": alice["project"].id,
        "name": "demo",
        "domain": {"id": "default", "name": "Default"},
    }
    assert {r["name"] for r in token["roles"]} == {"member", "reader"}  # reader is implied
    issued = dt.datetime.fromisoformat(token["issued_at"].replace("Z", "+00:00"))
    expires = dt.datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
    assert expires - issued == dt.timedelta(seconds=3600)
    (network,) = [s for s in token["catalog"] if s["type"] == "network"]
    assert network["name"] == "neutron"
    assert {e["interface"] for e in network["endpoints"]} == {"public", "internal", "admin"}
    # public_url unset: the catalog names the address the request reached.
    assert all(
        e["url"] == "http://testserver" and e["region_id"] == "RegionOne"
        for e in network["endpoints"]
    )
    # The token works on /v2.0 for this project.
    listed = web.with_token(raw).get("/v2.0/networks")
    assert listed.status_code == 200, listed.text


def test_configured_public_url_is_advertised(
    make_api: Callable[..., Any], alice: dict[str, Any]
) -> None:
    api = make_api(auth_strategy="token", public_url="https://segmentd.example:8443/")
    resp = login(TokenApi(api.client, None))
    assert resp.status_code == 201, resp.text
    urls = {e["url"] for s in resp.json()["token"]["catalog"] for e in s["endpoints"]}
    assert urls == {"https://segmentd.example:8443", "https://segmentd.example:8443/identity/v3"}
    hint = api.client.get("/v2.0/networks").headers["WWW-Authenticate"]
    assert hint == 'Keystone uri="https://segmentd.example:8443/identity/v3"'


def test_password_login_by_ids(web: TokenApi, alice: dict[str, Any]) -> None:
    resp = login(web, user={"id": alice["user"].id}, project={"id": alice["project"].id})
    assert resp.status_code == 201, resp.text
    by_domain_id = login(
        web,
        user={"name": "alice", "domain": {"id": "default"}},
        project={"name": "demo", "domain": {"id": "default"}},
    )
    assert by_domain_id.status_code == 201


def test_unscoped_login_uses_default_project(web: TokenApi, alice: dict[str, Any]) -> None:
    body = password_body(PASSWORD, {"name": "alice", "domain": DEFAULT})
    resp = web.client.post("/identity/v3/auth/tokens", json=body)
    assert resp.status_code == 201
    assert resp.json()["token"]["project"]["id"] == alice["project"].id


def _unauthorized(resp: Any) -> str:
    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["code"] == 401
    assert error["title"] == "Unauthorized"
    assert "X-Subject-Token" not in resp.headers
    message: str = error["message"]
    return message


def test_wrong_password_unknown_user_and_no_role_look_the_same(
    web: TokenApi, ident: Identity, alice: dict[str, Any], snapshot: Callable[[], Any]
) -> None:
    other = ident.project("other")
    before = snapshot()
    messages = {
        _unauthorized(login(web, password="wrong")),  # noqa: S106 - test data
        _unauthorized(login(web, user={"name": "mallory", "domain": DEFAULT})),
        _unauthorized(login(web, user={"id": "0" * 32})),
        _unauthorized(login(web, user={"name": "alice", "domain": {"name": "Elsewhere"}})),
        _unauthorized(login(web, project={"id": other.id})),
        _unauthorized(login(web, project={"name": "nowhere", "domain": DEFAULT})),
    }
    assert len(messages) == 1
    assert snapshot() == before  # no token row for a failed login


def test_malformed_login_bodies_are_keystone_400(web: TokenApi) -> None:
    for body in ({}, {"auth": {}}, {"auth": {"identity": {"methods": ["totp"], "password": {}}}}):
        resp = web.client.post("/identity/v3/auth/tokens", json=body)
        assert resp.status_code == 400
        assert resp.json()["error"]["title"] == "Bad Request"


def test_validate_and_revoke(web: TokenApi, alice: dict[str, Any]) -> None:
    raw = login(web).headers["X-Subject-Token"]
    other = login(web).headers["X-Subject-Token"]
    resp = web.client.get(
        "/identity/v3/auth/tokens", headers={"X-Auth-Token": other, "X-Subject-Token": raw}
    )
    assert resp.status_code == 200
    assert resp.headers["X-Subject-Token"] == raw
    assert resp.json()["token"]["user"]["name"] == "alice"
    # Used once, so the validation cache holds it: revocation must still win.
    assert web.with_token(raw).get("/v2.0/networks").status_code == 200
    assert (
        web.client.delete(
            "/identity/v3/auth/tokens", headers={"X-Auth-Token": other, "X-Subject-Token": raw}
        ).status_code
        == 204
    )
    # Revoked: unusable, and no longer found.
    assert web.with_token(raw).get("/v2.0/networks").status_code == 401
    gone = web.client.get(
        "/identity/v3/auth/tokens", headers={"X-Auth-Token": other, "X-Subject-Token": raw}
    )
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == 404
    assert web.with_token(other).get("/v2.0/networks").status_code == 200


def test_validate_needs_a_valid_caller_token(web: TokenApi, alice: dict[str, Any]) -> None:
    raw = login(web).headers["X-Subject-Token"]
    for caller in ({}, {"X-Auth-Token": "garbage"}):
        resp = web.client.get(
            "/identity/v3/auth/tokens", headers={**caller, "X-Subject-Token": raw}
        )
        _unauthorized(resp)


def test_other_users_may_not_validate_or_revoke_my_token(
    web: TokenApi, ident: Identity, alice: dict[str, Any]
) -> None:
    mine = login(web).headers["X-Subject-Token"]
    bob = ident.user("bob", "pw-bob", alice["project"], "member")
    theirs = ident.token(bob, alice["project"])
    headers = {"X-Auth-Token": theirs, "X-Subject-Token": mine}
    assert web.client.get("/identity/v3/auth/tokens", headers=headers).status_code == 403
    assert web.client.delete("/identity/v3/auth/tokens", headers=headers).status_code == 403
    assert web.with_token(mine).get("/v2.0/networks").status_code == 200


@pytest.fixture
def clocked(token_runtime: Runtime) -> Iterator[tuple[TokenApi, list[dt.datetime]]]:
    """An app whose clock the test moves."""
    now = [dt.datetime(2030, 1, 1, tzinfo=dt.UTC)]
    runtime = dataclasses.replace(token_runtime, clock=lambda: now[0])
    with client_for(create_app(runtime=runtime)) as client:
        yield TokenApi(client, None), now


def test_token_expires(clocked: tuple[TokenApi, list[dt.datetime]], alice: dict[str, Any]) -> None:
    web, now = clocked
    raw = login(web).headers["X-Subject-Token"]
    user = web.with_token(raw)
    assert user.get("/v2.0/networks").status_code == 200
    now[0] += dt.timedelta(seconds=3599)
    assert user.get("/v2.0/networks").status_code == 200
    now[0] += dt.timedelta(seconds=1)
    resp = user.get("/v2.0/networks")
    assert resp.status_code == 401
    assert resp.json()["NeutronError"]["type"] == "InvalidToken"


def test_removing_a_role_takes_effect_at_once(
    web: TokenApi, ident: Identity, alice: dict[str, Any]
) -> None:
    from segmentd.identity import store

    raw = login(web).headers["X-Subject-Token"]
    with ident.session() as session:
        store.remove_role(session, alice["user"], alice["project"], "member")
    assert web.with_token(raw).get("/v2.0/networks").status_code == 401


def test_no_plaintext_secret_at_rest(
    web: TokenApi, alice: dict[str, Any], snapshot: Callable[[], Any]
) -> None:
    raw = login(web).headers["X-Subject-Token"]
    state = snapshot()
    dump = repr(state)
    assert raw not in dump
    assert PASSWORD not in dump
    (token_row,) = state["identity_tokens"]
    assert hashlib.sha256(raw.encode()).hexdigest() in token_row
    (user_row,) = state["identity_users"]
    assert any(isinstance(v, str) and v.startswith("$argon2id$") for v in user_row)


@pytest.mark.parametrize(
    "path",
    [
        "/v2.0/networks",
        "/v2.0/segments",
        "/v2.0",
        "/v2.0/extensions",
        f"/v2.0/networks/{'0' * 8}-0000-0000-0000-{'0' * 12}",
    ],
)
@pytest.mark.parametrize("token", [None, "", "garbage", "x" * 5000])
def test_v2_needs_a_valid_token(web: TokenApi, path: str, token: str | None) -> None:
    resp = web.with_token(token).get(path)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Keystone uri="http://testserver/identity/v3"'
    error = resp.json()["NeutronError"]
    assert set(error) == {"type", "message", "detail"}
    assert resp.headers["X-Openstack-Request-Id"].startswith("req-")


def test_unauthenticated_writes_leave_no_trace(web: TokenApi, snapshot: Callable[[], Any]) -> None:
    before = snapshot()
    assert web.post("/v2.0/networks", {"network": {"name": "x"}}).status_code == 401
    assert (
        web.with_token("nope")
        .delete(f"/v2.0/segments/{'0' * 8}-0000-0000-0000-{'0' * 12}")
        .status_code
        == 401
    )
    assert snapshot() == before


def test_discovery_and_health_need_no_token(web: TokenApi) -> None:
    assert web.get("/").status_code == 200
    assert web.get("/healthz").status_code == 200
