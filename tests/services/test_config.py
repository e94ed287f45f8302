"""Neutron-syntax range options parse into typed ranges, and bad ones fail at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from segmentd.config import IdRange, Settings, parse_tunnel_ranges, parse_vlan_ranges


def test_vlan_ranges_with_and_without_bounds() -> None:
    ranges, physnets = parse_vlan_ranges("physnet1:100:199, physnet2 ,physnet1:300:300")
    assert physnets == ["physnet1", "physnet2"]
    assert ranges["physnet1"] == [
        IdRange("vlan", "physnet1", 100, 199),
        IdRange("vlan", "physnet1", 300, 300),
    ]
    assert ranges["physnet2"] == []


@pytest.mark.parametrize(
    "spec", ["physnet1:0:10", "physnet1:10:4095", "physnet1:20:10", "physnet1:1", ":1:2", "p" * 65]
)
def test_bad_vlan_ranges(spec: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_vlan_ranges(spec)


def test_tunnel_ranges() -> None:
    assert parse_tunnel_ranges("vxlan", "1:10,20") == [
        IdRange("vxlan", None, 1, 10),
        IdRange("vxlan", None, 20, 20),
    ]
    with pytest.raises(ValueError, match="outside"):
        parse_tunnel_ranges("vxlan", "1:16777216")
    with pytest.raises(ValueError, match="outside"):
        parse_tunnel_ranges("gre", "0:5")


def test_settings_reject_bad_ranges_and_insecure_production() -> None:
    with pytest.raises(ValidationError):
        Settings(network_vlan_ranges="physnet1:5000:6000")
    with pytest.raises(ValidationError, match="noauth"):
        Settings(environment="production", auth_strategy="noauth")
    with pytest.raises(ValidationError):
        Settings(tenant_network_types="token-ring")


def test_settings_from_toml_file(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "segmentd.toml"
    path.write_text('network_vlan_ranges = "datacentre:10:20"\ntenant_network_types = "vlan"\n')
    monkeypatch.setenv("SEGMENTD_CONFIG_FILE", str(path))
    monkeypatch.setenv("SEGMENTD_TENANT_NETWORK_TYPES", "vxlan")
    settings = Settings()
    assert settings.vlan_physnets() == ["datacentre"]
    assert settings.tenant_network_types == "vxlan"  # the environment wins over the file
