"""The web console with auth_strategy "keystone": a login with a token of the
real Keystone, the session scoped as that token is, and refused tokens."""

from __future__ import annotations

import re

import httpx2 as httpx
import pytest

from tests.keystone.cloud import KeystoneCloud

pytestmark = pytest.mark.slow

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _console(cloud: KeystoneCloud, token: str) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=cloud.segmentd, timeout=30)
    page = client.get("/ui/login")
    assert page.status_code == 200
    assert 'name="token"' in page.text and 'name="password"' not in page.text
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/login",
        data={"csrf": csrf, "token": token, "next": "/ui/networks"},
        headers={"Origin": cloud.segmentd},
    )
    return client, answer


def test_a_keystone_token_opens_a_console_session(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    token = cloud.token("alice", "alpha")
    client, answer = _console(cloud, token)
    try:
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/ui/networks"
        cookie = answer.headers["set-cookie"]
        assert token not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        home = client.get("/ui/")
        assert home.status_code == 200
        assert "alice @ alpha" in home.text
        # A form: the network is alpha's, as the API would have made it.
        form = client.get("/ui/networks/new").text
        made = client.post(
            "/ui/networks",
            data={"csrf": CSRF.search(form).group(1), "name": "from-console"},  # type: ignore[union-attr]
            headers={"Origin": cloud.segmentd},
        )
        assert made.status_code == 303, made.text
        network_id = made.headers["location"].rsplit("/", 1)[1]
        seen = cloud.get(f"/v2.0/networks/{network_id}", token).json()["network"]
        assert seen["project_id"] == cloud.projects["alpha"]
        # bob (beta) sees neither the network nor its page.
        bob, bob_answer = _console(cloud, cloud.token("bob", "beta"))
        try:
            assert bob_answer.status_code == 303
            assert "from-console" not in bob.get("/ui/networks").text
            assert bob.get(f"/ui/networks/{network_id}").status_code == 404
        finally:
            bob.close()
        logout = client.post(
            "/ui/logout",
            data={"csrf": CSRF.search(home.text).group(1)},  # type: ignore[union-attr]
            headers={"Origin": cloud.segmentd},
        )
        assert logout.status_code == 303
        assert client.get("/ui/").status_code == 303  # the session is over
        assert cloud.request("DELETE", f"/v2.0/networks/{network_id}", token).status_code == 204
    finally:
        client.close()


def test_a_refused_token_shows_the_login_page_again(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    token = cloud.token("bob", "beta")
    cloud.revoke(token)
    for given in (token, "not-a-token"):
        client, answer = _console(cloud, given)
        client.close()
        assert answer.status_code == 401
        assert "Keystone did not accept that token." in answer.text
        assert "segmentd_session" not in answer.headers.get("set-cookie", "")
