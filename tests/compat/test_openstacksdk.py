"""openstacksdk's network proxy, unchanged, against a live token-auth server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.conftest import PAGE_SIZE, Cloud

openstack = pytest.importorskip("openstack")
exceptions = openstack.exceptions

pytestmark = [
    pytest.mark.slow,
    # openstacksdk warns about its own internals (RemovedInSDK50Warning from
    # Resource._compute_attributes on every response); not ours to fix.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack"),
]


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Any:
    return cloud.connect()


@pytest.fixture(scope="module")
def member(cloud: Cloud) -> Any:
    return cloud.connect(member=True)


def test_network_with_provider_attributes_round_trip(admin: Any) -> None:
    net = admin.network.create_network(
        name="sdk-provider",
        provider_network_type="vlan",
        provider_physical_network="physnet1",
        provider_segmentation_id=201,
    )
    assert (
        net.provider_network_type,
        net.provider_physical_network,
        net.provider_segmentation_id,
    ) == (
        "vlan",
        "physnet1",
        201,
    )
    got = admin.network.get_network(net.id)
    assert got.name == "sdk-provider"
    assert got.provider_segmentation_id == 201
    assert got.is_admin_state_up is True
    assert got.status == "ACTIVE"
    assert net.id in {n.id for n in admin.network.networks(provider_network_type="vlan")}
    revision = net.revision_number
    updated = admin.network.update_network(net, name="sdk-provider-2", description="renamed")
    assert (updated.name, updated.description) == ("sdk-provider-2", "renamed")
    assert updated.revision_number > revision
    assert admin.network.find_network("sdk-provider-2").id == net.id
    admin.network.delete_network(net)
    assert admin.network.find_network(net.id) is None


def test_multi_segment_network(admin: Any) -> None:
    net = admin.network.create_network(
        name="sdk-multi",
        segments=[
            {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 202,
            },
            {"provider:network_type": "vxlan"},
        ],
    )
    assert [s["provider:network_type"] for s in net.segments] == ["vlan", "vxlan"]
    segments = list(admin.network.segments(network_id=net.id))
    assert sorted(s.network_type for s in segments) == ["vlan", "vxlan"]
    admin.network.delete_network(net)
    assert list(admin.network.segments(network_id=net.id)) == []


def test_segments_and_routed_subnets(admin: Any) -> None:
    net = admin.network.create_network(
        name="sdk-routed",
        provider_network_type="vlan",
        provider_physical_network="physnet1",
        provider_segmentation_id=203,
    )
    seg = admin.network.create_segment(
        network_id=net.id,
        network_type="vlan",
        physical_network="physnet2",
        segmentation_id=203,
        name="rack2",
    )
    assert (seg.network_type, seg.physical_network, seg.segmentation_id) == (
        "vlan",
        "physnet2",
        203,
    )
    listed = {s.id: s for s in admin.network.segments(network_id=net.id)}
    assert set(listed) >= {seg.id} and len(listed) == 2
    assert admin.network.get_segment(seg.id).name == "rack2"
    seg = admin.network.update_segment(seg, name="rack2b", description="second rack")
    assert (seg.name, seg.description) == ("rack2b", "second rack")

    subnet = admin.network.create_subnet(
        network_id=net.id,
        segment_id=seg.id,
        cidr="10.20.0.0/24",
        ip_version=4,
        name="rack2-v4",
    )
    assert subnet.segment_id == seg.id
    assert subnet.gateway_ip == "10.20.0.1"
    assert admin.network.get_network(net.id).subnet_ids == [subnet.id]
    with pytest.raises(exceptions.ConflictException, match="associated with subnet"):
        admin.network.delete_segment(seg)
    admin.network.delete_subnet(subnet)
    admin.network.delete_segment(seg)
    assert admin.network.find_segment(seg.id) is None
    admin.network.delete_network(net)


def test_network_segment_ranges(admin: Any, member: Any) -> None:
    rng = admin.network.create_network_segment_range(
        name="sdk-range",
        network_type="vlan",
        physical_network="physnet2",
        minimum=300,
        maximum=309,
        shared=True,
    )
    assert (rng.minimum, rng.maximum, rng.default, rng.shared) == (300, 309, False, True)
    assert rng.available == list(range(300, 310))
    assert rng.used == {}
    net = admin.network.create_network(
        name="sdk-in-range",
        provider_network_type="vlan",
        provider_physical_network="physnet2",
        provider_segmentation_id=305,
    )
    rng = admin.network.get_network_segment_range(rng.id)
    assert rng.used == {"305": admin.current_project_id}
    assert 305 not in rng.available
    everything = list(admin.network.network_segment_ranges())
    assert len(everything) > PAGE_SIZE  # the defaults plus ours: links were followed
    assert rng.id in {r.id for r in everything}
    assert any(r.default for r in everything)
    with pytest.raises(exceptions.ConflictException):
        admin.network.update_network_segment_range(rng.id, minimum=306)  # 305 is in use
    rng = admin.network.update_network_segment_range(rng.id, name="sdk-range-2", maximum=320)
    assert (rng.name, rng.maximum) == ("sdk-range-2", 320)
    assert list(member.network.network_segment_ranges()) == []
    admin.network.delete_network(net)
    admin.network.delete_network_segment_range(rng)
    assert admin.network.find_network_segment_range(rng.id) is None


def test_agents_listing_after_a_report(admin: Any) -> None:
    report = {
        "agent": {
            "host": "sdk-compute-1",
            "agent_type": "Open vSwitch agent",
            "binary": "neutron-openvswitch-agent",
            "configurations": {"bridge_mappings": {"physnet1": "br-eth1"}},
            "start_flag": True,
        }
    }
    resp = admin.network.post("/agents/report", json=report)
    assert resp.status_code == 200, resp.text
    agents = [a for a in admin.network.agents() if a.host == "sdk-compute-1"]
    assert len(agents) == 1
    agent = agents[0]
    assert (agent.agent_type, agent.binary, agent.is_alive, agent.is_admin_state_up) == (
        "Open vSwitch agent",
        "neutron-openvswitch-agent",
        True,
        True,
    )
    assert agent.configuration == {"bridge_mappings": {"physnet1": "br-eth1"}}
    agent = admin.network.update_agent(agent, description="rack 1")
    assert admin.network.get_agent(agent.id).description == "rack 1"


def test_pagination_follows_links(admin: Any) -> None:
    names = {f"sdk-page-{i}" for i in range(2 * PAGE_SIZE + 2)}
    created = [admin.network.create_network(name=n) for n in sorted(names)]
    # Default page size (the server's), an explicit smaller limit, and paginated=True.
    seen = [n.name for n in admin.network.networks() if n.name in names]
    assert sorted(seen) == sorted(names)
    small = [n.name for n in admin.network.networks(limit=3) if n.name in names]
    assert sorted(small) == sorted(names)
    paged = [n.name for n in admin.network.networks(paginated=True, limit=2) if n.name in names]
    assert sorted(paged) == sorted(names)
    for net in created:
        admin.network.delete_network(net)


def test_not_found(admin: Any) -> None:
    missing = "7d1e2b55-0000-4000-8000-000000000000"
    with pytest.raises(exceptions.ResourceNotFound, match="could not be found"):
        admin.network.get_segment(missing)
    with pytest.raises(exceptions.ResourceNotFound):
        admin.network.get_network(missing)
    with pytest.raises(exceptions.ResourceNotFound):
        admin.network.get_network_segment_range(missing)
    assert admin.network.find_segment("no-such-segment") is None


def test_duplicate_vlan_is_a_conflict(admin: Any) -> None:
    net = admin.network.create_network(
        name="sdk-dup",
        provider_network_type="vlan",
        provider_physical_network="physnet1",
        provider_segmentation_id=204,
    )
    with pytest.raises(
        exceptions.ConflictException, match=r"204 on physical network physnet1 is in use"
    ) as caught:
        admin.network.create_network(
            name="sdk-dup-2",
            provider_network_type="vlan",
            provider_physical_network="physnet1",
            provider_segmentation_id=204,
        )
    assert caught.value.status_code == 409
    with pytest.raises(exceptions.ConflictException):
        admin.network.create_segment(
            network_id=net.id,
            network_type="vlan",
            physical_network="physnet1",
            segmentation_id=204,
        )
    assert admin.network.find_network("sdk-dup-2") is None
    admin.network.delete_network(net)


def test_member_is_forbidden_to_manage_segments(admin: Any, member: Any, cloud: Cloud) -> None:
    own = member.network.create_network(name="sdk-member-net")
    assert own.project_id == cloud.member_project_id
    assert own.provider_network_type is None  # provider attributes are admin-only
    with pytest.raises(exceptions.ForbiddenException, match="Not authorized") as caught:
        member.network.create_segment(
            network_id=own.id, network_type="vlan", physical_network="physnet1"
        )
    assert caught.value.status_code == 403
    # Segments are invisible to members: an empty list, and 404 for a real one.
    admin_seg = next(iter(admin.network.segments(network_id=own.id)))
    assert list(member.network.segments()) == []
    with pytest.raises(exceptions.ResourceNotFound):
        member.network.get_segment(admin_seg.id)
    member.network.delete_network(own)


# Neutron wire parity (issue 17) ------------------------------------------------------


def test_tags_through_the_sdk(admin: Any) -> None:
    net = admin.network.create_network(name="sdk-tags", tags=["a"])
    assert net.tags == ["a"]
    admin.network.set_tags(net, ["b", "c"])
    got = admin.network.get_network(net.id)
    assert sorted(got.tags) == ["b", "c"]
    got.add_tag(admin.network, "d")
    got.remove_tag(admin.network, "b")
    assert sorted(admin.network.get_network(net.id).tags) == ["c", "d"]
    got.check_tag(admin.network, "c")
    with pytest.raises(exceptions.NotFoundException):
        got.check_tag(admin.network, "zzz")
    assert [n.id for n in admin.network.networks(tags="c,d")] == [net.id]
    assert net.id not in {n.id for n in admin.network.networks(not_tags="c")}
    got.remove_all_tags(admin.network)
    assert admin.network.get_network(net.id).tags == []
    admin.network.delete_network(net)


def test_external_network_and_subnet_attributes(admin: Any, member: Any) -> None:
    ext = admin.network.create_network(name="sdk-ext", is_router_external=True)
    assert ext.is_router_external is True
    sub = admin.network.create_subnet(
        network_id=ext.id,
        ip_version=4,
        cidr="203.0.113.0/24",
        dns_nameservers=["192.0.2.53"],
        host_routes=[{"destination": "198.51.100.0/24", "nexthop": "203.0.113.254"}],
        service_types=["network:floatingip"],
    )
    assert sub.dns_nameservers == ["192.0.2.53"]
    assert sub.service_types == ["network:floatingip"]
    # Visible to another project, as Neutron makes external networks.
    assert member.network.get_network(ext.id).is_router_external is True
    assert member.network.get_subnet(sub.id).cidr == "203.0.113.0/24"
    assert ext.id in {n.id for n in member.network.networks(is_router_external=True)}
    updated = admin.network.update_subnet(sub, dns_nameservers=[], host_routes=[])
    assert (updated.dns_nameservers, updated.host_routes) == ([], [])
    admin.network.delete_subnet(sub)
    admin.network.delete_network(ext)


def test_every_advertised_extension_can_be_looked_up(admin: Any) -> None:
    aliases = [e.alias for e in admin.network.extensions()]
    assert "external-net" in aliases and "standard-attr-tag" in aliases
    for alias in aliases:  # GET /v2.0/extensions/{alias}, as `extension show` does
        assert admin.network.find_extension(alias, ignore_missing=False).alias == alias
    with pytest.raises(exceptions.NotFoundException):
        admin.network.find_extension("dvr", ignore_missing=False)


def test_bulk_create_through_the_sdk(admin: Any) -> None:
    from openstack.network.v2 import network as network_resource

    made = list(
        network_resource.Network.bulk_create(
            admin.network, [{"name": "sdk-bulk-1"}, {"name": "sdk-bulk-2", "mtu": 1400}]
        )
    )
    assert [n.name for n in made] == ["sdk-bulk-1", "sdk-bulk-2"]
    assert admin.network.get_network(made[1].id).mtu == 1400
    for net in made:
        admin.network.delete_network(net)
