"""A small cloud for tests and benchmarks: a real Keystone and segmentd in its catalog.

``KeystoneCloud`` acts in it the way people do: it logs users in at Keystone,
administers Keystone through its API as its admin, and calls segmentd with
the tokens.  ``populate`` is what an operator does once (the README's
"Joining an existing cloud"): projects and users, segmentd's service user
with the ``service`` role, and segmentd registered as the ``network``
service.
"""

from __future__ import annotations

import datetime as dt
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.keystone.keystone_server import ADMIN_PASSWORD, REGION, Keystone
from tests.tcp_proxy import TcpProxy

SERVICE_PASSWORD = "segmentd-service-pass"  # noqa: S105 - test data
USER_PASSWORD = "keystone-user-pass"  # noqa: S105 - test data
# Short, so that a revocation shows within a test; the default is 300 s.
TOKEN_CACHE_SECONDS = 5
# Policy overrides that read what only Keystone tokens carry (see test_tokens).
POLICY = """\
"get_audit_event": "role:admin and system_scope:all"
"get_allocation_usage": "rule:context_is_admin or service_roles:service"
"""

# user -> [(project, role)]: a member and a reader of each project, and one
# user who is a member of one project and a reader of the other.
USERS: dict[str, list[tuple[str, str]]] = {
    "alice": [("alpha", "member"), ("beta", "reader")],
    "rita": [("alpha", "reader")],
    "bob": [("beta", "member")],
}


@dataclass
class KeystoneCloud:
    """The test cloud: Keystone, segmentd, and what a test needs to act in them."""

    keystone: Keystone
    proxy: TcpProxy | None  # between segmentd and Keystone's internal endpoint, if any
    segmentd: str  # segmentd's base URL, as the catalog advertises it
    projects: dict[str, str]  # name -> id
    users: dict[str, str]  # name -> id
    workdir: Path
    _admin_token: str = field(default="", repr=False)

    @property
    def auth_url(self) -> str:
        return self.keystone.url

    def token(
        self, user: str, project: str | None = None, *, system: bool = False, password: str = ""
    ) -> str:
        """A fresh token of ``user``, scoped to ``project`` or to the system."""
        scope: dict[str, Any] = (
            {"system": {"all": True}}
            if system
            else {"project": {"name": project, "domain": {"id": "default"}}}
        )
        identity = {
            "methods": ["password"],
            "password": {
                "user": {
                    "name": user,
                    "domain": {"id": "default"},
                    "password": password or self.password_of(user),
                }
            },
        }
        return self._issue({"auth": {"identity": identity, "scope": scope}})

    def app_credential_token(self, secret: str, credential_id: str) -> str:
        identity = {
            "methods": ["application_credential"],
            "application_credential": {"id": credential_id, "secret": secret},
        }
        return self._issue({"auth": {"identity": identity}})

    def _issue(self, body: dict[str, Any]) -> str:
        resp = httpx.post(f"{self.auth_url}/auth/tokens?nocatalog", json=body, timeout=30)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"]

    @staticmethod
    def password_of(user: str) -> str:
        if user == "admin":
            return ADMIN_PASSWORD
        return SERVICE_PASSWORD if user == "segmentd" else USER_PASSWORD

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Keystone's API as its admin (project-scoped to ``admin``)."""
        if not self._admin_token:
            self._admin_token = self.token("admin", "admin")
        headers = {"X-Auth-Token": self._admin_token, **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.auth_url}{path}", headers=headers, timeout=30, **kwargs
        )

    def revoke(self, token: str) -> None:
        resp = self.admin("DELETE", "/auth/tokens", headers={"X-Subject-Token": token})
        assert resp.status_code == 204, resp.text

    def application_credential(
        self,
        user: str,
        project: str,
        *,
        access_rules: list[dict[str, str]] | None = None,
        expires_at: dt.datetime | None = None,
    ) -> tuple[str, str]:
        """(id, secret) of a new application credential of ``user`` on ``project``."""
        body: dict[str, Any] = {"name": f"cred-{secrets.token_hex(4)}"}
        if access_rules is not None:
            body["access_rules"] = access_rules
        if expires_at is not None:
            body["expires_at"] = expires_at.strftime("%Y-%m-%dT%H:%M:%S")
        token = self.token(user, project)
        resp = httpx.post(
            f"{self.auth_url}/users/{self.users[user]}/application_credentials",
            json={"application_credential": body},
            headers={"X-Auth-Token": token},
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        cred = resp.json()["application_credential"]
        return cred["id"], cred["secret"]

    def get(self, path: str, token: str | None, **headers: str) -> httpx.Response:
        return self.request("GET", path, token, **headers)

    def request(
        self, method: str, path: str, token: str | None, json: Any = None, **headers: str
    ) -> httpx.Response:
        """Raw HTTP to segmentd with ``token`` (None: none at all)."""
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if token is not None:
            sent["X-Auth-Token"] = token
        return httpx.request(method, f"{self.segmentd}{path}", json=json, headers=sent, timeout=60)

    def connect(self, user: str, project: str, **auth: Any) -> Any:
        """An openstacksdk connection that logs in at Keystone (no clouds.yaml, no OS_*)."""
        import openstack

        if not auth:
            auth = {
                "username": user,
                "password": self.password_of(user),
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            }
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Support for InfluxDB", PendingDeprecationWarning)
            return openstack.connect(
                auth_url=self.auth_url,
                region_name=REGION,
                load_yaml_config=False,
                load_envvars=False,
                **auth,
            )


def populate(cloud: KeystoneCloud, segmentd_url: str) -> None:
    """What an operator does once: projects, users, roles, the service user, the catalog."""
    roles = {r["name"]: r["id"] for r in cloud.admin("GET", "/roles").json()["roles"]}

    def create(kind: str, body: dict[str, Any]) -> str:
        resp = cloud.admin("POST", f"/{kind}s", json={kind: body})
        assert resp.status_code == 201, resp.text
        return str(resp.json()[kind]["id"])

    for name in ("alpha", "beta", "service"):
        cloud.projects[name] = create("project", {"name": name, "domain_id": "default"})
    cloud.projects["admin"] = cloud.admin("GET", "/projects?name=admin").json()["projects"][0]["id"]
    cloud.users["admin"] = cloud.admin("GET", "/users?name=admin").json()["users"][0]["id"]
    grants = {**USERS, "segmentd": [("service", "service")]}
    for user, assignments in grants.items():
        body = {"name": user, "domain_id": "default", "password": cloud.password_of(user)}
        cloud.users[user] = create("user", body)
        for project, role in assignments:
            path = (
                f"/projects/{cloud.projects[project]}/users/{cloud.users[user]}/roles/{roles[role]}"
            )
            assert cloud.admin("PUT", path).status_code == 204
    service = create("service", {"type": "network", "name": "segmentd"})
    for interface in ("public", "internal"):
        endpoint = {
            "service_id": service,
            "interface": interface,
            "url": segmentd_url,
            "region_id": REGION,
        }
        create("endpoint", endpoint)


def segmentd_config(cloud: KeystoneCloud, policy_file: Path | None = None) -> str:
    """segmentd.toml as the README shows it; segmentd reaches Keystone at its
    internal endpoint (in the tests: through the proxy)."""
    policy = f'policy_file = "{policy_file}"\n' if policy_file else ""
    return f"""\
auth_strategy = "keystone"
{policy}
[keystone_authtoken]
www_authenticate_uri = "{cloud.keystone.url}"
auth_url = "{cloud.keystone.internal_url}"
auth_type = "password"
username = "segmentd"
password = "{SERVICE_PASSWORD}"
project_name = "service"
user_domain_name = "Default"
project_domain_name = "Default"
region_name = "{REGION}"
service_token_roles = "service"
"""
