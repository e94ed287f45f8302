"""The ``openstack`` CLI and openstacksdk, unchanged, in a cloud whose Keystone
is real: they log in there (password or application credential), find
segmentd in its catalog as the ``network`` service, and use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.keystone.cloud import REGION, KeystoneCloud

pytestmark = [
    pytest.mark.slow,
    # openstacksdk warns about its own internals (RemovedInSDK50Warning from
    # Resource._compute_attributes on every response); not ours to fix.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack"),
]

OPENSTACK = Path(sys.executable).with_name("openstack")


class Cli:
    """``openstack --os-cloud NAME ...`` with a clouds.yaml of its own (no OS_* leaks in)."""

    def __init__(self, clouds_yaml: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml)
        self.cwd = clouds_yaml.parent

    def run(self, cloud: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(OPENSTACK), "--os-cloud", cloud, *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, cloud: str, *args: str) -> Any:
        done = self.run(cloud, *args, "-f", "json")
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout)

    def ok(self, cloud: str, *args: str) -> None:
        done = self.run(cloud, *args)
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"


def _password_cloud(cloud: KeystoneCloud, user: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": cloud.auth_url,
            "username": user,
            "password": cloud.password_of(user),
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": REGION,
        "identity_api_version": 3,
    }


def _write_clouds(path: Path, clouds: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"clouds": clouds}))  # YAML is a superset of JSON
    return path


@pytest.fixture(scope="module")
def cli(keystone_cloud: KeystoneCloud) -> Cli:
    if not OPENSTACK.exists():
        pytest.fail("the openstack CLI is not installed beside this interpreter")
    clouds = {
        "admin": _password_cloud(keystone_cloud, "admin", "admin"),
        "alice": _password_cloud(keystone_cloud, "alice", "alpha"),
    }
    return Cli(_write_clouds(keystone_cloud.workdir / "clouds.yaml", clouds))


def test_cli_builds_a_routed_network_through_the_catalog(
    cli: Cli, keystone_cloud: KeystoneCloud
) -> None:
    endpoints = cli.json("admin", "endpoint", "list", "--service", "network")
    assert {e["URL"] for e in endpoints} == {keystone_cloud.segmentd}
    net = cli.json(
        "admin",
        "network",
        "create",
        "--provider-network-type",
        "vlan",
        "--provider-physical-network",
        "physnet1",
        "--provider-segment",
        "301",
        "ks-net",
    )
    assert (net["provider:network_type"], net["provider:segmentation_id"]) == ("vlan", 301)
    seg = cli.json(
        "admin",
        "network",
        "segment",
        "create",
        "--network",
        "ks-net",
        "--network-type",
        "vlan",
        "--physical-network",
        "physnet2",
        "--segment",
        "302",
        "ks-rack2",
    )
    subnet = cli.json(
        "admin",
        "subnet",
        "create",
        "--network",
        "ks-net",
        "--network-segment",
        "ks-rack2",
        "--subnet-range",
        "10.30.0.0/24",
        "ks-rack2-v4",
    )
    assert (subnet["segment_id"], subnet["cidr"]) == (seg["id"], "10.30.0.0/24")
    listed = cli.json("admin", "network", "segment", "list", "--network", "ks-net")
    assert sorted(s["Segment"] for s in listed) == [301, 302]
    # A member of alpha: its own network, nothing of the admin project's.
    mine = cli.json("alice", "network", "create", "alice-cli-net")
    assert mine["project_id"] == keystone_cloud.projects["alpha"]
    names = {n["Name"] for n in cli.json("alice", "network", "list")}
    assert "alice-cli-net" in names
    assert "ks-net" not in names
    cli.ok("alice", "network", "delete", "alice-cli-net")
    cli.ok("admin", "subnet", "delete", "ks-rack2-v4")
    cli.ok("admin", "network", "segment", "delete", "ks-rack2")
    cli.ok("admin", "network", "delete", "ks-net")


def test_cli_with_an_application_credential(cli: Cli, keystone_cloud: KeystoneCloud) -> None:
    cred = cli.json("alice", "application", "credential", "create", "segmentd-cli")
    clouds = {
        "alice-app": {
            "auth_type": "v3applicationcredential",
            "auth": {
                "auth_url": keystone_cloud.auth_url,
                "application_credential_id": cred["ID"],
                "application_credential_secret": cred["Secret"],
            },
            "region_name": REGION,
            "identity_api_version": 3,
        }
    }
    app = Cli(_write_clouds(keystone_cloud.workdir / "clouds-app.yaml", clouds))
    created = app.json("alice-app", "network", "create", "app-cred-net")
    assert created["project_id"] == keystone_cloud.projects["alpha"]
    assert "app-cred-net" in {n["Name"] for n in app.json("alice-app", "network", "list")}
    app.ok("alice-app", "network", "delete", "app-cred-net")


def test_openstacksdk_with_password_and_application_credential(
    keystone_cloud: KeystoneCloud,
) -> None:
    cloud = keystone_cloud
    admin = cloud.connect("admin", "admin")
    assert admin.network.get_endpoint().rstrip("/") in (cloud.segmentd, f"{cloud.segmentd}/v2.0")
    net = admin.network.create_network(
        name="sdk-net",
        provider_network_type="vlan",
        provider_physical_network="physnet1",
        provider_segmentation_id=311,
    )
    seg = admin.network.create_segment(
        network_id=net.id, network_type="vlan", physical_network="physnet2", segmentation_id=312
    )
    subnet = admin.network.create_subnet(
        network_id=net.id, segment_id=seg.id, ip_version=4, cidr="10.31.0.0/24"
    )
    assert sorted(s.segmentation_id for s in admin.network.segments(network_id=net.id)) == [
        311,
        312,
    ]
    assert [s.id for s in admin.network.subnets(network_id=net.id)] == [subnet.id]

    alice = cloud.connect("alice", "alpha")
    own = alice.network.create_network(name="sdk-alice")
    assert own.project_id == cloud.projects["alpha"]
    assert net.id not in {n.id for n in alice.network.networks()}
    assert list(alice.network.segments()) == []  # segments are admin-only

    cred = alice.identity.create_application_credential(
        user=cloud.users["alice"], name="segmentd-sdk"
    )
    app = cloud.connect(
        "alice",
        "alpha",
        auth_type="v3applicationcredential",
        application_credential_id=cred.id,
        application_credential_secret=cred.secret,
    )
    assert own.id in {n.id for n in app.network.networks()}
    app.network.delete_network(own.id)
    admin.network.delete_subnet(subnet.id)
    admin.network.delete_segment(seg.id)
    admin.network.delete_network(net.id)
