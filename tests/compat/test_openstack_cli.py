"""The ``openstack`` CLI (python-openstackclient), unchanged, as a subprocess.

Each invocation costs about a second of interpreter start-up, so the tests
batch their assertions per command.  The CLI reads a clouds.yaml written to a
temporary directory (``OS_CLIENT_CONFIG_FILE`` + ``--os-cloud``), exactly the
setup the README describes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import ADMIN_PASSWORD, MEMBER_PASSWORD, Cloud

pytest.importorskip("openstackclient")

pytestmark = pytest.mark.slow

OPENSTACK = Path(sys.executable).with_name("openstack")


@pytest.fixture(scope="module")
def clouds_yaml(cloud: Cloud) -> Path:
    def entry(user: str, password: str, project: str) -> str:
        return (
            f"    auth:\n"
            f"      auth_url: {cloud.auth_url}\n"
            f"      username: {user}\n"
            f"      password: {password}\n"
            f"      project_name: {project}\n"
            f"      user_domain_name: Default\n"
            f"      project_domain_name: Default\n"
            f"    region_name: RegionOne\n"
            f"    identity_api_version: 3\n"
        )

    path = cloud.workdir / "clouds.yaml"
    path.write_text(
        "clouds:\n"
        f"  segmentd:\n{entry('admin', ADMIN_PASSWORD, 'admin')}"
        f"  segmentd-member:\n{entry('bob', MEMBER_PASSWORD, 'demo')}"
    )
    return path


class Cli:
    def __init__(self, clouds_yaml: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml)
        self.cwd = clouds_yaml.parent

    def run(self, *args: str, cloud: str = "segmentd") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(OPENSTACK), "--os-cloud", cloud, *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, *args: str, cloud: str = "segmentd") -> Any:
        done = self.run(*args, "-f", "json", cloud=cloud)
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout)

    def ok(self, *args: str, cloud: str = "segmentd") -> str:
        done = self.run(*args, cloud=cloud)
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"
        return done.stdout

    def fails(self, *args: str, cloud: str = "segmentd") -> str:
        done = self.run(*args, cloud=cloud)
        assert done.returncode != 0, done.stdout
        assert "Traceback" not in done.stderr
        return done.stderr


@pytest.fixture(scope="module")
def cli(clouds_yaml: Path) -> Cli:
    if not OPENSTACK.exists():
        pytest.skip("the openstack CLI is not installed beside this interpreter")
    return Cli(clouds_yaml)


def test_routed_network_segments_and_subnets(cli: Cli) -> None:
    net = cli.json(
        "network",
        "create",
        "--provider-network-type",
        "vlan",
        "--provider-physical-network",
        "physnet1",
        "--provider-segment",
        "101",
        "cli-net",
    )
    assert (
        net["provider:network_type"],
        net["provider:physical_network"],
        net["provider:segmentation_id"],
    ) == (
        "vlan",
        "physnet1",
        101,
    )
    assert net["status"] == "ACTIVE"

    seg = cli.json(
        "network",
        "segment",
        "create",
        "--network",
        "cli-net",
        "--network-type",
        "vlan",
        "--physical-network",
        "physnet2",
        "--segment",
        "102",
        "--description",
        "rack 2",
        "cli-seg",
    )
    assert (seg["network_id"], seg["segmentation_id"], seg["description"]) == (
        net["id"],
        102,
        "rack 2",
    )
    cli.ok(
        "network", "segment", "set", "--name", "cli-seg-2", "--description", "rack two", seg["id"]
    )
    shown = cli.json("network", "segment", "show", "cli-seg-2")
    assert (shown["id"], shown["name"], shown["description"]) == (
        seg["id"],
        "cli-seg-2",
        "rack two",
    )
    listed = cli.json("network", "segment", "list", "--network", "cli-net", "--long")
    assert sorted((s["Segment"], s["Physical Network"]) for s in listed) == [
        (101, "physnet1"),
        (102, "physnet2"),
    ]

    subnet = cli.json(
        "subnet",
        "create",
        "--network",
        "cli-net",
        "--network-segment",
        "cli-seg-2",
        "--subnet-range",
        "10.0.0.0/24",
        "cli-subnet",
    )
    assert (subnet["segment_id"], subnet["cidr"], subnet["gateway_ip"]) == (
        seg["id"],
        "10.0.0.0/24",
        "10.0.0.1",
    )
    assert subnet["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]

    # A segment with subnets cannot go: exit 1 with the service's reason.
    assert "associated with subnet" in cli.fails("network", "segment", "delete", "cli-seg-2")
    networks = cli.json("network", "list", "--internal", "--long")
    assert {n["Name"]: n["Subnets"] for n in networks}["cli-net"] == [subnet["id"]]
    cli.ok("subnet", "delete", "cli-subnet")
    cli.ok("network", "segment", "delete", "cli-seg-2")
    cli.ok("network", "delete", "cli-net")


def test_network_segment_ranges(cli: Cli, cloud: Cloud) -> None:
    created = cli.json(
        "network",
        "segment",
        "range",
        "create",
        "--network-type",
        "vlan",
        "--physical-network",
        "physnet1",
        "--minimum",
        "100",
        "--maximum",
        "120",
        "--shared",
        "cli-range",
    )
    assert (created["minimum"], created["maximum"], created["shared"], created["default"]) == (
        100,
        120,
        True,
        False,
    )
    assert created["available"] == ["100-120"]  # the CLI folds the service's ID list into runs
    private = cli.json(
        "network",
        "segment",
        "range",
        "create",
        "--private",
        "--project",
        "demo",
        "--network-type",
        "vlan",
        "--physical-network",
        "physnet2",
        "--minimum",
        "130",
        "--maximum",
        "139",
        "cli-private",
    )
    assert (private["shared"], private["project_id"]) == (False, cloud.member_project_id)
    listed = cli.json("network", "segment", "range", "list")
    names = {r["Name"] for r in listed}
    assert {"cli-range", "cli-private"} <= names
    assert sum(r["Default"] for r in listed) >= 2  # more than one page: links followed
    cli.ok(
        "network",
        "segment",
        "range",
        "set",
        "--name",
        "cli-range-2",
        "--minimum",
        "90",
        "--maximum",
        "125",
        "cli-range",
    )
    shown = cli.json("network", "segment", "range", "show", "cli-range-2")
    assert (shown["id"], shown["minimum"], shown["maximum"]) == (created["id"], 90, 125)
    default = next(r for r in listed if r["Default"] and r["Network Type"] == "vlan")
    assert cli.json("network", "segment", "range", "show", default["ID"])["available"] == [
        "1000-2999"
    ]
    # A 24-bit default range: the CLI shows its (bounded) integer list too.
    vxlan = next(r for r in listed if r["Default"] and r["Network Type"] == "vxlan")
    assert cli.json("network", "segment", "range", "show", vxlan["ID"])["available"][0].startswith(
        "1-"
    )
    long_list = cli.json("network", "segment", "range", "list", "--long")
    assert {r["Network Type"] for r in long_list} >= {"vlan", "vxlan", "geneve", "gre"}
    refused = cli.fails("network", "segment", "range", "delete", default["ID"])
    assert "400" in refused and "is a default segment range" in refused
    cli.ok("network", "segment", "range", "delete", "cli-range-2", "cli-private")


def test_agent_list(cli: Cli, cloud: Cloud) -> None:
    import httpx2 as httpx

    login = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"name": "Default"},
                        "password": ADMIN_PASSWORD,
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    with httpx.Client(base_url=cloud.base, timeout=30) as http:
        token = http.post("/identity/v3/auth/tokens", json=login).headers["X-Subject-Token"]
        report = {
            "agent": {
                "host": "cli-compute-1",
                "agent_type": "Linux bridge agent",
                "binary": "neutron-linuxbridge-agent",
                "configurations": {"interface_mappings": {"physnet2": "eth2"}},
            }
        }
        resp = http.post("/v2.0/agents/report", json=report, headers={"X-Auth-Token": token})
        assert resp.status_code == 200, resp.text
    agents = cli.json("network", "agent", "list", "--host", "cli-compute-1")
    assert [(a["Agent Type"], a["Alive"], a["State"], a["Binary"]) for a in agents] == [
        ("Linux bridge agent", True, True, "neutron-linuxbridge-agent"),
    ]


def test_errors_are_readable(cli: Cli) -> None:
    assert "No Segment found for nope" in cli.fails("network", "segment", "show", "nope")
    missing = cli.fails("network", "show", "7d1e2b55-0000-4000-8000-000000000000")
    assert "No Network found for 7d1e2b55-0000-4000-8000-000000000000" in missing
    cli.json(
        "network",
        "create",
        "--provider-network-type",
        "vlan",
        "--provider-physical-network",
        "physnet1",
        "--provider-segment",
        "111",
        "cli-taken",
    )
    conflict = cli.fails(
        "network",
        "create",
        "--provider-network-type",
        "vlan",
        "--provider-physical-network",
        "physnet1",
        "--provider-segment",
        "111",
        "cli-taken-2",
    )
    assert "409" in conflict and "111 on physical network physnet1 is in use" in conflict
    member_net = cli.json("network", "create", "cli-member-net", cloud="segmentd-member")
    forbidden = cli.fails(
        "network",
        "segment",
        "create",
        "--network",
        member_net["id"],
        "--network-type",
        "vxlan",
        "cli-nope",
        cloud="segmentd-member",
    )
    assert "403" in forbidden and "Not authorized" in forbidden
    cli.ok("network", "delete", "cli-taken", "cli-member-net")


def test_catalog_names_the_address_served(cli: Cli, cloud: Cloud) -> None:
    # The server was started on a random port with public_url unset; every
    # network command above reached it through this catalog.
    catalog = cli.json("catalog", "list")
    urls = {e["url"] for service in catalog for e in service["Endpoints"]}
    assert urls == {cloud.base, f"{cloud.base}/identity/v3"}


def test_identity_read_commands_for_an_admin(cli: Cli, cloud: Cloud) -> None:
    users = {u["Name"]: u["ID"] for u in cli.json("user", "list")}
    assert {"admin", "bob"} <= set(users)
    bob = cli.json("user", "show", "bob")
    assert (bob["id"], bob["default_project_id"]) == (users["bob"], cloud.member_project_id)
    projects = {p["Name"]: p["ID"] for p in cli.json("project", "list")}
    assert projects["demo"] == cloud.member_project_id
    assert projects["admin"] == cloud.admin_project_id
    assert {r["Name"] for r in cli.json("role", "list")} == {"admin", "member", "reader", "service"}
    everyone = cli.json("role", "assignment", "list", "--names")
    assert {"Role": "admin", "User": "admin@Default", "Project": "admin@Default"}.items() <= next(
        a for a in everyone if a["User"] == "admin@Default"
    ).items()
    bobs = cli.json("role", "assignment", "list", "--user", "bob", "--project", "demo")
    assert [(a["User"], a["Project"]) for a in bobs] == [(users["bob"], cloud.member_project_id)]
    members = cli.json("role", "assignment", "list", "--role", "member", "--names")
    assert [a["User"] for a in members] == ["bob@Default"]


def test_identity_commands_refused_name_the_segmentd_command(cli: Cli) -> None:
    refused = cli.fails("user", "list", cloud="segmentd-member")
    assert "403" in refused and "`segmentd user list`" in refused
    refused = cli.fails("role", "assignment", "list", cloud="segmentd-member")
    assert "`segmentd role list`" in refused
    refused = cli.fails("user", "create", "--password", "x-pass-1", "mallory")
    assert "403" in refused and "`segmentd user create`" in refused
    refused = cli.fails("project", "create", "other")
    assert "`segmentd project create`" in refused
    assert "mallory" not in {u["Name"] for u in cli.json("user", "list")}


# Neutron wire parity (issue 17): what the CLI does beyond the plain CRUD ------------


def test_tags_on_create_set_unset_and_filters(cli: Cli) -> None:
    """``--tag`` on create is a PUT .../tags after the POST; set/unset and the
    ``--tags``/``--any-tags``/``--not-tags`` filters follow."""
    net = cli.json("network", "create", "--tag", "red", "--tag", "blue", "cli-tagged")
    assert sorted(net["tags"]) == ["blue", "red"]
    cli.ok("network", "set", "--tag", "green", "cli-tagged")
    cli.ok("network", "unset", "--tag", "red", "cli-tagged")
    assert sorted(cli.json("network", "show", "cli-tagged")["tags"]) == ["blue", "green"]
    cli.json("network", "create", "--tag", "green", "cli-tagged-2")
    both = cli.json("network", "list", "--tags", "blue,green", "--long")
    assert [n["Name"] for n in both] == ["cli-tagged"]
    anyof = cli.json("network", "list", "--any-tags", "green")
    assert sorted(n["Name"] for n in anyof) == ["cli-tagged", "cli-tagged-2"]
    none = cli.json("network", "list", "--not-tags", "blue")
    assert "cli-tagged" not in {n["Name"] for n in none}
    cli.ok("network", "set", "--no-tag", "cli-tagged")
    assert cli.json("network", "show", "cli-tagged")["tags"] == []

    seg = cli.json(
        "network", "segment", "create", "--network", "cli-tagged", "--network-type", "vxlan", "s"
    )
    sub = cli.json(
        "subnet",
        "create",
        "--network",
        "cli-tagged",
        "--subnet-range",
        "10.77.0.0/24",
        "--tag",
        "web",
        "cli-tagged-sub",
    )
    assert sub["tags"] == ["web"]
    cli.ok("subnet", "set", "--tag", "db", "cli-tagged-sub")
    cli.ok("subnet", "unset", "--tag", "web", "cli-tagged-sub")
    assert cli.json("subnet", "show", "cli-tagged-sub")["tags"] == ["db"]
    assert [s["Name"] for s in cli.json("subnet", "list", "--tags", "db")] == ["cli-tagged-sub"]
    cli.ok("subnet", "delete", "cli-tagged-sub")
    cli.ok("network", "segment", "delete", seg["id"])
    cli.ok("network", "delete", "cli-tagged", "cli-tagged-2")


def test_external_networks(cli: Cli) -> None:
    ext = cli.json("network", "create", "--external", "cli-public")
    assert ext["router:external"] is True
    internal = cli.json("network", "create", "--internal", "cli-private")
    assert internal["router:external"] is False
    assert [n["Name"] for n in cli.json("network", "list", "--external")] == ["cli-public"]
    assert "cli-public" not in {n["Name"] for n in cli.json("network", "list", "--internal")}
    # A member of another project sees the external network, and may not make its own.
    seen = cli.json("network", "show", "cli-public", cloud="segmentd-member")
    assert seen["router:external"] is True
    refused = cli.fails("network", "create", "--external", "mine", cloud="segmentd-member")
    assert "403" in refused or "not allowed" in refused.lower() or "authorized" in refused.lower()
    cli.ok("network", "set", "--internal", "cli-public")
    assert cli.json("network", "show", "cli-public")["router:external"] is False
    cli.ok("network", "set", "--external", "cli-private")
    assert cli.json("network", "show", "cli-private")["router:external"] is True
    cli.ok("network", "delete", "cli-public", "cli-private")


def test_subnet_dns_nameservers_and_host_routes(cli: Cli) -> None:
    cli.json("network", "create", "cli-dns-net")
    sub = cli.json(
        "subnet",
        "create",
        "--network",
        "cli-dns-net",
        "--subnet-range",
        "10.78.0.0/24",
        "--dns-nameserver",
        "192.0.2.53",
        "--dns-nameserver",
        "192.0.2.54",
        "--host-route",
        "destination=198.51.100.0/24,gateway=10.78.0.254",
        "cli-dns",
    )
    assert sub["dns_nameservers"] == ["192.0.2.53", "192.0.2.54"]
    assert sub["host_routes"] == [{"destination": "198.51.100.0/24", "nexthop": "10.78.0.254"}]
    cli.ok("subnet", "set", "--dns-nameserver", "192.0.2.55", "cli-dns")
    cli.ok("subnet", "unset", "--dns-nameserver", "192.0.2.53", "cli-dns")
    cli.ok(
        "subnet",
        "unset",
        "--host-route",
        "destination=198.51.100.0/24,gateway=10.78.0.254",
        "cli-dns",
    )
    shown = cli.json("subnet", "show", "cli-dns")
    assert sorted(shown["dns_nameservers"]) == ["192.0.2.54", "192.0.2.55"]
    assert shown["host_routes"] == []
    v6 = cli.json(
        "subnet",
        "create",
        "--network",
        "cli-dns-net",
        "--ip-version",
        "6",
        "--subnet-range",
        "2001:db8:78::/64",
        "--ipv6-ra-mode",
        "slaac",
        "--ipv6-address-mode",
        "slaac",
        "cli-dns-v6",
    )
    assert (v6["ipv6_ra_mode"], v6["ipv6_address_mode"]) == ("slaac", "slaac")
    assert v6["gateway_ip"] == "2001:db8:78::"
    cli.ok("subnet", "delete", "cli-dns", "cli-dns-v6")
    cli.ok("network", "delete", "cli-dns-net")


def test_extension_show_and_list(cli: Cli) -> None:
    listed = cli.json("extension", "list", "--network")
    aliases = {e["Alias"] for e in listed}
    assert {"external-net", "standard-attr-tag", "segment", "subnet-service-types"} <= aliases
    for alias in ("external-net", "standard-attr-tag", "net-mtu-writable", "l2_adjacency"):
        shown = cli.json("extension", "show", alias)
        assert shown["alias"] == alias
    assert "dvr" in cli.fails("extension", "show", "dvr")
