"""The browser tier: Debian's Chromium, driven by Playwright, against a real
``segmentd serve`` process on a SQLite database of its own.

Chromium is ``/usr/bin/chromium`` (``.ci/run`` installs it with apt when it
is missing; Playwright's own browser download is never used).  The tier is
skipped only when ``SEGMENTD_TEST_NO_BROWSER=1``; a missing browser is a
failure, not a skip.  Screenshots of every page go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from segmentd.db import migrate
from segmentd.db.base import utcnow
from segmentd.identity import store, tokens
from segmentd.main import build_runtime
from tests.agent_helpers import ovs
from tests.conftest import make_settings
from tests.console.support import People, make_people
from tests.identity_support import Identity
from tests.server import running_server

CHROMIUM = os.environ.get("SEGMENTD_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# The server hashes passwords as cheaply as the test runtime that made the users.
SERVER_ENV = {
    "SEGMENTD_AUTH_STRATEGY": "token",
    "SEGMENTD_PASSWORD_TIME_COST": "1",
    "SEGMENTD_PASSWORD_MEMORY_KIB": "64",
    "SEGMENTD_PASSWORD_PARALLELISM": "1",
    "SEGMENTD_LOG_LEVEL": "warning",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("SEGMENTD_TEST_NO_BROWSER") == "1":
        skip = pytest.mark.skip(reason="SEGMENTD_TEST_NO_BROWSER=1: the browser tier is off")
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(skip)


@dataclass
class Site:
    base: str
    people: People
    admin_token: str

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"X-Auth-Token": self.admin_token}, timeout=30
        )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'console.db'}"
    migrate.upgrade(url)
    rt = build_runtime(make_settings(url, auth_strategy="token"))
    try:
        people = make_people(rt)
        with Identity(rt).session() as session:
            root = store.lookup_user(session, "root")
            project = store.lookup_project(session, people.admin_project)
            token, _ = tokens.issue(session, root, project, utcnow(), 3600)
    finally:
        rt.close()
    with running_server(url, env=SERVER_ENV) as base:
        state = Site(base, people, token)
        with state.api() as api:
            for i, physnets in enumerate((("physnet1",), ("physnet1", "physnet2"), ("physnet2",))):
                body = {"agent": ovs(f"compute-{i}", *physnets)}
                assert api.post("/v2.0/agents/report", json=body).status_code == 200
            beta = {"network": {"name": "beta-net", "project_id": people.beta}}
            assert api.post("/v2.0/networks", json=beta).status_code == 201
            # Something to see in the pool picture: VLANs in use, a reserved range.
            for i in range(24):
                vlan = {
                    "name": f"vlan-{i}",
                    "provider:network_type": "vlan",
                    "provider:physical_network": "physnet1",
                    "provider:segmentation_id": 1000 + (i * 37) % 2000,
                }
                assert api.post("/v2.0/networks", json={"network": vlan}).status_code == 201
            reserved = {
                "name": "alpha-vlans",
                "network_type": "vlan",
                "physical_network": "physnet1",
                "minimum": 3000,
                "maximum": 3199,
                "shared": False,
                "project_id": people.alpha,
            }
            answer = api.post(
                "/v2.0/network_segment_ranges", json={"network_segment_range": reserved}
            )
            assert answer.status_code == 201, answer.text
        yield state


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does), "
            "or set SEGMENTD_TEST_NO_BROWSER=1 to skip the browser tier"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at a laptop's size; CSP
    violations and script errors would show as console errors: none allowed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.console_errors = errors
    yield tab
    context.close()


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
