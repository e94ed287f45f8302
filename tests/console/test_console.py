"""The web console over HTTP: login, session cookie, CSRF, headers, scope, forms.

The browser tier (tests/browser) drives the same pages in Chromium; these
tests pin each rule with its status, body and database state.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from segmentd.api.runtime import Runtime
from segmentd.db.audit import AuditEvent
from segmentd.db.base import utcnow
from segmentd.db.identity import ConsoleSession
from segmentd.db.models import Network, NetworkSegmentRange, Segment, Subnet
from segmentd.identity import store, tokens
from segmentd.identity.sessions import hash_session
from segmentd.main import build_runtime, create_app
from tests.conftest import make_settings
from tests.console.support import (
    PASSWORD,
    People,
    csrf_of,
    form_post,
    logged_in,
    login,
    make_people,
)
from tests.identity_support import Identity

ORIGIN = "http://testserver"


@pytest.fixture
def people(token_app: Any, token_runtime: Runtime) -> People:
    return make_people(token_runtime)


@pytest.fixture
def admin(token_app: Any, people: People) -> Iterator[TestClient]:
    with logged_in(token_app, "root", "admin") as client:
        yield client


@pytest.fixture
def alice(token_app: Any, people: People) -> Iterator[TestClient]:
    with logged_in(token_app, "alice", "alpha") as client:
        yield client


def rows(engine: Engine, model: Any, *where: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(model).where(*where)))


def test_login_cookie_holds_a_session_id_with_strict_flags(
    token_app: Any, people: People, engine: Engine
) -> None:
    client = TestClient(token_app, base_url=ORIGIN)
    answer = login(client, "root", "admin")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "segmentd_session=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/ui"} <= flags
    assert "secure" not in flags  # plain http here; https: see the next test
    raw = re.search(r"segmentd_session=([^;]+)", cookie).group(1)  # type: ignore[union-attr]
    # The server keeps the id's hash, never the id, and issued no token.
    stored = rows(engine, ConsoleSession)
    assert [r.session_hash for r in stored] == [hash_session(raw)]
    assert stored[0].revoked_at is None
    assert stored[0].expires_at - stored[0].created_at == dt.timedelta(hours=8)
    assert client.get("/ui/").status_code == 200


def test_cookie_is_secure_over_https(token_app: Any, people: People) -> None:
    client = TestClient(token_app, base_url="https://testserver")
    page = client.get("/ui/login")
    answer = client.post(
        "/ui/login",
        data={"csrf": csrf_of(page.text), "username": "root", "password": PASSWORD},
        headers={"Origin": "https://testserver"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "segmentd_session=" in c)
    assert "secure" in cookie.lower()


def test_every_page_carries_the_security_headers(admin: TestClient) -> None:
    for path in ("/ui/login", "/ui/", "/ui/pools", "/ui/networks", "/ui/no-such-page"):
        answer = admin.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp, path
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert "<script" not in answer.text
    assert admin.get("/ui/no-such-page").status_code == 404


def test_pages_without_a_session_send_to_the_login_page(token_app: Any, people: People) -> None:
    client = TestClient(token_app, base_url=ORIGIN)
    answer = client.get("/ui/networks?name=x", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fnetworks%3Fname%3Dx"
    client.cookies.set("segmentd_session", "forged", path="/ui")
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_a_wrong_password_shows_the_form_again(
    token_app: Any, people: People, engine: Engine
) -> None:
    client = TestClient(token_app, base_url=ORIGIN)
    answer = login(client, "root", "admin", password="wrong")  # noqa: S106
    assert answer.status_code == 401
    assert "Invalid user name, password or project." in answer.text
    assert rows(engine, ConsoleSession) == []


def test_console_logins_share_the_identity_rate_limits(database_url: str) -> None:
    rt = build_runtime(
        make_settings(database_url, auth_strategy="token", ratelimit_login="2/minute")
    )
    try:
        people = make_people(rt)
        assert people
        client = TestClient(create_app(runtime=rt), base_url=ORIGIN)
        for _ in range(2):
            assert login(client, "root", "admin", password="bad").status_code == 401  # noqa: S106
        assert login(client, "root", "admin", password="bad").status_code == 429  # noqa: S106
        # The very same counter refuses the API's login of that user now.
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "root", "domain": {"id": "default"}, "password": "x"}
                    },
                }
            }
        }
        api = client.post("/identity/v3/auth/tokens", json=body)
        assert api.status_code == 429
    finally:
        rt.close()


def test_forms_without_the_csrf_token_are_refused(admin: TestClient, engine: Engine) -> None:
    before = rows(engine, Network)
    answer = admin.post(
        "/ui/networks", data={"name": "x"}, headers={"Origin": ORIGIN}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert "refused" in answer.text
    wrong = admin.post(
        "/ui/networks",
        data={"name": "x", "csrf": "0" * 64},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert wrong.status_code == 403
    assert rows(engine, Network) == before


def test_cross_origin_posts_are_refused(admin: TestClient, engine: Engine) -> None:
    token = csrf_of(admin.get("/ui/networks/new").text)
    before = rows(engine, Network)
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        answer = admin.post(
            "/ui/networks",
            data={"name": "x", "csrf": token},
            headers=headers,
            follow_redirects=False,
        )
        assert answer.status_code == 403, headers
    assert rows(engine, Network) == before
    # The login form too: another site cannot log a browser in.
    client = TestClient(admin.app, base_url=ORIGIN)
    page = client.get("/ui/login")
    evil = client.post(
        "/ui/login",
        data={"csrf": csrf_of(page.text), "username": "root", "password": PASSWORD},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert evil.status_code == 403
    no_token = client.post(
        "/ui/login",
        data={"username": "root", "password": PASSWORD},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert no_token.status_code == 403


def test_logout_revokes_the_session(admin: TestClient, engine: Engine) -> None:
    cookie = admin.cookies.get("segmentd_session")
    answer = form_post(admin, "/ui/logout", {})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login"
    [row] = rows(engine, ConsoleSession)
    assert row.revoked_at is not None
    admin.cookies.set("segmentd_session", cookie, path="/ui")  # replayed: refused
    assert admin.get("/ui/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
def test_idle_and_absolute_timeouts(admin: TestClient, engine: Engine, column: str) -> None:
    assert admin.get("/ui/", follow_redirects=False).status_code == 200
    past = {
        "last_seen_at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1801),
        "expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
    }[column]
    with engine.begin() as conn:
        conn.execute(update(ConsoleSession).values({column: past}))
    assert admin.get("/ui/", follow_redirects=False).status_code == 303


def _network(client: TestClient, **data: str) -> str:
    answer = form_post(client, "/ui/networks", data, "/ui/networks/new")
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"]).rsplit("/", 1)[1]


def test_a_member_sees_only_its_project(
    admin: TestClient, alice: TestClient, people: People, engine: Engine
) -> None:
    mine = _network(alice, name="alpha-net")
    theirs = _network(admin, name="beta-net", project_id=people.beta)
    assert {r.project_id for r in rows(engine, Network)} == {people.alpha, people.beta}
    listing = alice.get("/ui/networks").text
    assert "alpha-net" in listing and "beta-net" not in listing
    assert "beta-net" in admin.get("/ui/networks").text
    assert alice.get(f"/ui/networks/{theirs}").status_code == 404
    page = alice.get(f"/ui/networks/{mine}")
    assert page.status_code == 200
    assert "provider attributes are shown to admins" in page.text  # as the API hides them
    # Admin-only lists are empty for a member, as the API's are, and not offered.
    for path, empty in (
        ("/ui/pools", "No ranges."),
        ("/ui/segments", "No segments."),
        ("/ui/agents", "No agents."),
        ("/ui/audit", "No events."),
        ("/ui/hosts", "No host reports"),
    ):
        answer = alice.get(path)
        assert answer.status_code == 200 and empty in answer.text, path
        assert f'href="{path}"' not in listing
    # Deleting another project's network: the API's 404.
    token = csrf_of(alice.get("/ui/networks").text)
    refused = alice.post(
        f"/ui/networks/{theirs}/delete",
        data={"csrf": token},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert refused.status_code == 404
    assert len(rows(engine, Network, Network.id == theirs)) == 1


def test_network_segment_subnet_through_the_forms(admin: TestClient, engine: Engine) -> None:
    net = _network(
        admin,
        name="routed",
        network_type="vlan",
        physical_network="physnet1",
        segmentation_id="1234",
    )
    [segment] = rows(engine, Segment, Segment.network_id == net)
    assert (segment.network_type, segment.physical_network, segment.segmentation_id) == (
        "vlan",
        "physnet1",
        1234,
    )
    added = form_post(
        admin,
        f"/ui/networks/{net}/segments",
        {"network_type": "vlan", "physical_network": "physnet2", "name": "rack2"},
    )
    assert added.status_code == 303
    second = str(added.headers["location"]).rsplit("/", 1)[1]
    subnet = form_post(
        admin, f"/ui/segments/{second}/subnets", {"network_id": net, "cidr": "10.2.0.0/24"}
    )
    assert subnet.status_code == 303
    [row] = rows(engine, Subnet, Subnet.network_id == net)
    assert (row.segment_id, row.cidr) == (second, "10.2.0.0/24")
    page = admin.get(f"/ui/networks/{net}").text
    assert "rack2" in page and "10.2.0.0/24" in page
    # The pool picture links VLAN 1234 of physnet1 to the network.
    pools = admin.get("/ui/pools").text
    assert f'href="/ui/networks/{net}" title="VLAN 1234: routed"' in pools
    # The same audit events as the API's, under the same permissions.
    with engine.connect() as conn:
        events = {
            (e.action, e.resource_type, e.permission)
            for e in conn.execute(select(AuditEvent).where(AuditEvent.action != "deny"))
        }
    assert events >= {
        ("create", "network", "create_network"),
        ("create", "segment", "create_segment"),
        ("create", "subnet", "create_subnet"),
    }
    assert "create_network" in admin.get("/ui/audit?resource_type=network").text


def test_api_errors_are_shown(admin: TestClient, engine: Engine) -> None:
    _network(
        admin, name="one", network_type="vlan", physical_network="physnet1", segmentation_id="7"
    )
    answer = form_post(
        admin,
        "/ui/networks",
        {
            "name": "two",
            "network_type": "vlan",
            "physical_network": "physnet1",
            "segmentation_id": "7",
        },
        "/ui/networks/new",
    )
    assert answer.status_code == 409
    assert "7" in answer.text and 'class="error"' in answer.text
    assert len(rows(engine, Network)) == 1


def test_segment_ranges_through_the_forms(
    admin: TestClient, people: People, engine: Engine
) -> None:
    answer = form_post(
        admin,
        "/ui/ranges",
        {
            "name": "alpha-vlans",
            "network_type": "vlan",
            "physical_network": "physnet1",
            "minimum": "100",
            "maximum": "109",
            "project_id": people.alpha,
        },
        "/ui/ranges",
    )
    assert answer.status_code == 303, answer.text
    [made] = rows(engine, NetworkSegmentRange, NetworkSegmentRange.name == "alpha-vlans")
    assert (made.minimum, made.maximum, made.shared, made.project_id) == (
        100,
        109,
        False,
        people.alpha,
    )
    assert 'title="100: reserved for' in admin.get("/ui/pools").text
    gone = form_post(admin, f"/ui/ranges/{made.id}/delete", {}, "/ui/ranges")
    assert gone.status_code == 303
    assert rows(engine, NetworkSegmentRange, NetworkSegmentRange.name == "alpha-vlans") == []


def test_the_console_can_be_turned_off(database_url: str) -> None:
    rt = build_runtime(make_settings(database_url, auth_strategy="token", ui_enabled=False))
    try:
        client = TestClient(create_app(runtime=rt))
        answer = client.get("/ui/login")
        assert answer.status_code == 404
        assert answer.json()["NeutronError"]["type"] == "HTTPNotFound"
    finally:
        rt.close()


def test_a_member_sees_its_subnets_without_their_segments(
    admin: TestClient, alice: TestClient, people: People, engine: Engine, token_runtime: Runtime
) -> None:
    net = _network(alice, name="alpha-net")
    [segment] = rows(engine, Segment, Segment.network_id == net)
    # An admin's subnet on the segment, owned by alice's project (the API's way).
    with Identity(token_runtime).session() as session:
        root = store.lookup_user(session, "root")
        raw, _ = tokens.issue(session, root, store.lookup_project(session, "admin"), utcnow(), 60)
    body = {
        "subnet": {
            "network_id": net,
            "segment_id": segment.id,
            "cidr": "10.9.0.0/24",
            "ip_version": 4,
            "project_id": people.alpha,
        }
    }
    made = admin.post("/v2.0/subnets", json=body, headers={"X-Auth-Token": raw})
    assert made.status_code == 201, made.text
    page = alice.get(f"/ui/networks/{net}").text
    assert "10.9.0.0/24" in page
    assert segment.id not in page  # get_subnet:segment_id is admin-only, as in the API
    assert segment.id in admin.get(f"/ui/networks/{net}").text


def test_lists_are_paged(database_url: str) -> None:
    rt = build_runtime(make_settings(database_url, auth_strategy="token", ui_page_size=5))
    try:
        make_people(rt)
        with logged_in(create_app(runtime=rt), "root", "admin") as client:
            for i in range(7):
                _network(client, name=f"paged-{i}")
            first = client.get("/ui/networks").text
            assert first.count('<tr>\n  <td><a href="/ui/networks/') == 5
            link = re.search(r'<a href="([^"]+)" rel="next">', first)
            assert link is not None
            second = client.get(link.group(1).replace("&amp;", "&")).text
            assert second.count('<tr>\n  <td><a href="/ui/networks/') == 2
            assert 'rel="next"' not in second
            names = set(re.findall(r"paged-\d", first + second))
            assert names == {f"paged-{i}" for i in range(7)}
    finally:
        rt.close()


def test_audit_trail_filters(admin: TestClient, alice: TestClient, people: People) -> None:
    net = _network(admin, name="audited", project_id=people.beta)
    token = csrf_of(alice.get("/ui/networks").text)
    refused = alice.post(
        "/ui/networks/new-range-attempt/delete",
        data={"csrf": token},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert refused.status_code == 404
    form_post(alice, "/ui/ranges", {"network_type": "vlan", "minimum": "1", "maximum": "2"})
    everything = admin.get("/ui/audit").text
    assert net in everything and "create_network_segment_range" in everything
    denied = admin.get("/ui/audit?outcome=denied").text
    assert "create_network_segment_range" in denied and net not in denied
    allowed = admin.get("/ui/audit?outcome=allowed&resource_type=network").text
    assert net in allowed and "create_network_segment_range" not in allowed
    assert net not in admin.get("/ui/audit?since=2999-01-01T00:00").text
    assert net in admin.get("/ui/audit?until=2999-01-01T00:00Z").text
    bad = admin.get("/ui/audit?since=yesterday")
    assert bad.status_code == 400
    assert "invalid value for filter &#39;since&#39;" in bad.text


def test_login_returns_only_inside_the_console(token_app: Any, people: People) -> None:
    for given, expected in (
        ("/ui/networks?name=a", "/ui/networks?name=a"),
        ("//evil.example/ui/", "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("/ui/\\\\evil.example", "/ui/"),
        ("/v2.0/networks", "/ui/"),
    ):
        client = TestClient(token_app, base_url=ORIGIN)
        page = client.get("/ui/login")
        answer = client.post(
            "/ui/login",
            data={
                "csrf": csrf_of(page.text),
                "username": "root",
                "password": PASSWORD,
                "next": given,
            },
            headers={"Origin": ORIGIN},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == expected, given


def test_remove_a_segment_then_delete_the_network(admin: TestClient, engine: Engine) -> None:
    net = _network(admin, name="shrinking", network_type="vxlan")
    added = form_post(
        admin,
        f"/ui/networks/{net}/segments",
        {"network_type": "vlan", "physical_network": "physnet1"},
    )
    second = str(added.headers["location"]).rsplit("/", 1)[1]
    subnet = form_post(
        admin, f"/ui/segments/{second}/subnets", {"network_id": net, "cidr": "10.3.0.0/24"}
    )
    assert subnet.status_code == 303
    # A segment with a subnet: the API's refusal, shown; nothing changes.
    in_use = form_post(admin, f"/ui/segments/{second}/delete", {})
    assert in_use.status_code == 409
    assert 'class="error"' in in_use.text and second in in_use.text
    assert len(rows(engine, Segment, Segment.network_id == net)) == 2
    with engine.begin() as conn:
        conn.execute(Subnet.__table__.delete().where(Subnet.network_id == net))
    removed = form_post(admin, f"/ui/segments/{second}/delete", {})
    assert removed.status_code == 303
    assert removed.headers["location"] == f"/ui/networks/{net}"
    assert [s.network_type for s in rows(engine, Segment, Segment.network_id == net)] == ["vxlan"]
    deleted = form_post(admin, f"/ui/networks/{net}/delete", {})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/ui/networks"
    assert rows(engine, Network, Network.id == net) == []
    assert rows(engine, Segment, Segment.network_id == net) == []
    with engine.connect() as conn:
        actions = [
            (e.action, e.resource_type)
            for e in conn.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "delete")
                .order_by(AuditEvent.created_at)
            )
        ]
    assert actions == [("delete", "segment"), ("delete", "network")]
