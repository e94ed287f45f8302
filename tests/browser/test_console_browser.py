"""The console in Chromium: log in, walk every page, change things through
the forms, see them in the pool picture, log out; a member's view; refused
cross-site and CSRF-less posts; the session cookie's flags."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Site, shot
from tests.console.support import PASSWORD

PAGES = ("Overview", "Pools", "Networks", "Segments", "Ranges", "Hosts", "Agents", "Audit")


def log_in(page: Any, site: Site, user: str, project: str) -> None:
    page.goto(f"{site.base}/ui/")
    assert page.url.startswith(f"{site.base}/ui/login")  # no session: the login page
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Project").fill(project)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.base}/ui/")


def test_login_walk_every_page_and_cookie_flags(page: Any, site: Site) -> None:
    page.goto(f"{site.base}/ui/login")
    shot(page, "00-login")
    log_in(page, site, "root", "admin")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "segmentd_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on loopback; https sets it
    assert cookie["path"] == "/ui"
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts
    for i, name in enumerate(PAGES, start=1):
        page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()
        page.wait_for_load_state()
        assert page.locator("h1").count() == 1, name
        assert "Error" not in page.title(), name
        shot(page, f"{i:02d}-{name.lower()}")
    page.goto(f"{site.base}/ui/hosts/compute-1")
    assert page.get_by_text("physnet2").count() >= 1
    shot(page, "09-host")
    assert page.console_errors == []  # no CSP violation, no script error


def test_forms_network_segment_subnet_then_the_pool_picture(page: Any, site: Site) -> None:
    log_in(page, site, "root", "admin")
    page.goto(f"{site.base}/ui/networks")
    page.get_by_role("link", name="New network").click()
    page.get_by_label("Name", exact=True).fill("routed-net")
    page.get_by_label("Network type").select_option("vlan")
    page.get_by_label("Physical network").select_option("physnet1")
    page.get_by_label("Segmentation ID").fill("1500")
    shot(page, "10-network-new")
    page.get_by_role("button", name="Create network").click()
    page.wait_for_url(re.compile(r".*/ui/networks/[0-9a-f-]{36}$"))
    network_id = page.url.rsplit("/", 1)[1]
    assert page.locator("h1").inner_text() == "Network routed-net"
    # A second segment, on physnet2.
    add = page.locator("form", has=page.get_by_role("button", name="Add segment"))
    add.get_by_label("Type").select_option("vlan")
    add.get_by_label("Physical network").fill("physnet2")
    add.get_by_label("Name").fill("rack-2")
    add.get_by_role("button", name="Add segment").click()
    page.wait_for_url(re.compile(r".*/ui/segments/[0-9a-f-]{36}$"))
    assert "compute-1" in page.locator("main").inner_text()  # hosts mapped to physnet2
    shot(page, "14-segment")
    page.goto(f"{site.base}/ui/networks/{network_id}")
    first = page.locator("ol.routed > li").first
    first.get_by_label("Subnet CIDR").fill("10.15.0.0/24")
    first.get_by_role("button", name="Add subnet").click()
    page.wait_for_url(re.compile(r".*/ui/segments/[0-9a-f-]{36}$"))
    assert "10.15.0.0/24" in page.locator("main").inner_text()
    page.goto(f"{site.base}/ui/networks/{network_id}")
    assert "10.15.0.0/24" in page.locator("ol.routed").inner_text()
    routed = page.locator("ol.routed").inner_text()
    assert "rack-2" in routed
    # segment -> subnets -> hosts: physnet1's hosts under the first segment.
    first_hosts = page.locator("ol.routed > li").first.locator("p.hosts").inner_text()
    assert "compute-0" in first_hosts and "compute-2" not in first_hosts
    assert "create" in page.locator("table").last.inner_text()  # its history
    shot(page, "11-network")
    # A refused change shows the API's message: VLAN 1500 is taken.
    page.goto(f"{site.base}/ui/networks/new")
    page.get_by_label("Name", exact=True).fill("clash")
    page.get_by_label("Network type").select_option("vlan")
    page.get_by_label("Physical network").select_option("physnet1")
    page.get_by_label("Segmentation ID").fill("1500")
    page.get_by_role("button", name="Create network").click()
    assert "1500" in page.get_by_role("alert").inner_text()
    shot(page, "12-error")
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 409 (Conflict)"
    ]
    page.console_errors.clear()
    # The pool picture: VLAN 1500 of physnet1 is a used cell linking to the network.
    page.goto(f"{site.base}/ui/pools")
    cell = page.locator(f'#pool-vlan\\:physnet1 a.c.used[href="/ui/networks/{network_id}"]')
    assert cell.count() == 1
    assert cell.get_attribute("title") == "VLAN 1500: routed-net"
    assert page.locator("#pool-vlan\\:physnet1 .c").count() == 4094
    assert page.locator("#pool-vxlan\\: .bar .b").count() == 100  # never one per ID
    shot(page, "13-pools")
    shot(page, "13-pools-screen", full_page=False)  # the README's picture (docs/)
    cell.click()
    page.wait_for_url(f"{site.base}/ui/networks/{network_id}")
    # Log out: the session ends and the pages ask for a login again.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{site.base}/ui/login")
    page.goto(f"{site.base}/ui/networks")
    assert page.url.startswith(f"{site.base}/ui/login?next=")
    assert page.console_errors == []


def test_a_member_sees_only_its_project(page: Any, site: Site) -> None:
    log_in(page, site, "alice", "alpha")
    page.goto(f"{site.base}/ui/networks/new")
    assert page.get_by_label("Network type").count() == 0  # provider attributes: admins only
    page.get_by_label("Name", exact=True).fill("alpha-net")
    page.get_by_role("button", name="Create network").click()
    page.wait_for_url(re.compile(r".*/ui/networks/[0-9a-f-]{36}$"))
    page.goto(f"{site.base}/ui/networks")
    listing = page.locator("main").inner_text()
    assert "alpha-net" in listing and "beta-net" not in listing
    links = page.get_by_role("navigation").get_by_role("link").all_inner_texts()
    assert links == ["Overview", "Networks"]
    shot(page, "20-member-networks")
    with site.api() as api:
        beta = api.get("/v2.0/networks", params={"name": "beta-net"}).json()["networks"][0]
    answer = page.goto(f"{site.base}/ui/networks/{beta['id']}")
    assert answer.status == 404


@pytest.fixture
def other_site() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Another site (``localhost`` is not ``127.0.0.1``) serving a form that
    posts to the console, as a forged cross-site request would."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_cross_site_and_csrf_less_posts_are_refused(
    page: Any, site: Site, other_site: tuple[str, dict[str, bytes]]
) -> None:
    other_base, other_pages = other_site
    log_in(page, site, "root", "admin")
    with site.api() as api:
        before = len(api.get("/v2.0/networks").json()["networks"])
    # Without the CSRF token, from this very origin, with the session cookie.
    answer = page.request.post(f"{site.base}/ui/networks", form={"name": "forged-1"})
    assert answer.status == 403
    # With a valid token but another Origin.
    page.goto(f"{site.base}/ui/networks/new")
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = page.request.post(
        f"{site.base}/ui/networks",
        form={"name": "forged-2", "csrf": token},
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status == 403
    # A real cross-site form submitted by the browser: SameSite=Strict keeps
    # the cookie home, and the Origin check would refuse it anyway.
    form = (
        f'<form method="post" action="{site.base}/ui/networks">'
        f'<input name="name" value="forged-3"><input name="csrf" value="{token}">'
        "<button>Win a prize</button></form>"
    ).encode()
    other_pages["/prize"] = form
    page.goto(f"{other_base}/prize")
    with page.expect_navigation():
        page.get_by_role("button", name="Win a prize").click()
    assert "Network" not in page.locator("h1").inner_text()
    assert page.locator(".error").count() == 1  # refused, with a page that says so
    with site.api() as api:
        names = {n["name"] for n in api.get("/v2.0/networks").json()["networks"]}
        assert len(names) >= before and not {"forged-1", "forged-2", "forged-3"} & names
    assert SCREENSHOTS.exists()


def test_phone_sized_and_keyboard(browser: Any, site: Site) -> None:
    """Readable on a phone (nothing wider than the screen) and usable from
    the keyboard (a skip link first, then the menu), without JavaScript."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, site, "root", "admin")
        for path, name in (
            ("/ui/", "30-phone-overview"),
            ("/ui/networks", "31-phone-networks"),
            ("/ui/pools", "32-phone-pools"),
            ("/ui/audit", "33-phone-audit"),
        ):
            page.goto(f"{site.base}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
            shot(page, name)
        page.goto(f"{site.base}/ui/networks")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        # Past the menu: the page's own first control (the "New network" link).
        assert page.evaluate("document.activeElement.closest('main') !== null")
        assert page.evaluate("document.activeElement.textContent") == "New network"
    finally:
        context.close()
