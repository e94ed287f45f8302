"""Tokens of a real Keystone at segmentd's door: valid, forged, expired, revoked,
from another project, with a service token, and while Keystone is away."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import pytest

from tests.keystone.cloud import TOKEN_CACHE_SECONDS, KeystoneCloud

pytestmark = pytest.mark.slow

NETWORKS = "/v2.0/networks"


def _refused(resp: object, cloud: KeystoneCloud) -> None:
    """A 401 that names the Keystone to log in at (keystonemiddleware's header)."""
    assert resp.status_code == 401, resp.text  # type: ignore[attr-defined]
    headers = resp.headers  # type: ignore[attr-defined]
    assert headers["WWW-Authenticate"] == f'Keystone uri="{cloud.keystone.url}"'
    assert resp.json()["NeutronError"]["type"] == "InvalidToken"  # type: ignore[attr-defined]


def test_a_keystone_token_is_accepted_and_names_its_caller(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    token = cloud.token("alice", "alpha")
    created = cloud.request("POST", NETWORKS, token, json={"network": {"name": "whoami"}})
    assert created.status_code == 201, created.text
    network = created.json()["network"]
    assert network["project_id"] == cloud.projects["alpha"]
    system = cloud.token("admin", system=True)  # the policy override: system admins only
    events = cloud.get(f"/v2.0/audit-events?resource_id={network['id']}", system).json()
    (event,) = events["audit_events"]
    assert (event["user_id"], event["project_id"]) == (
        cloud.users["alice"],
        cloud.projects["alpha"],
    )
    assert cloud.request("DELETE", f"{NETWORKS}/{network['id']}", token).status_code == 204


def test_missing_forged_and_malformed_tokens_are_401(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    _refused(cloud.get(NETWORKS, None), cloud)
    real = cloud.token("alice", "alpha")
    forged = [
        "gAAAAAB" + secrets.token_urlsafe(180),  # shaped like a Fernet token
        real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB"),  # a real one, altered
        "x" * 9000,  # longer than any token
        "not a token",
    ]
    for token in forged:
        _refused(cloud.get(NETWORKS, token), cloud)
    assert cloud.get(NETWORKS, real).status_code == 200


def test_the_built_in_identity_is_off(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    assert cloud.get("/identity/v3", None).status_code == 404
    body = {"auth": {"identity": {"methods": ["password"]}}}
    assert cloud.request("POST", "/identity/v3/auth/tokens", None, json=body).status_code == 404


def test_a_token_of_another_project_never_sees_this_ones(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    alice = cloud.token("alice", "alpha")
    net = cloud.request("POST", NETWORKS, alice, json={"network": {"name": "alpha-only"}})
    assert net.status_code == 201, net.text
    net_id = net.json()["network"]["id"]
    alpha = cloud.projects["alpha"]
    # bob is a member of beta; alice's own token scoped to beta (a reader
    # there) is just as foreign to alpha's resources.
    for outsider in (cloud.token("bob", "beta"), cloud.token("alice", "beta")):
        listed = cloud.get(NETWORKS, outsider).json()["networks"]
        assert net_id not in {n["id"] for n in listed}
        assert cloud.get(f"{NETWORKS}?project_id={alpha}", outsider).json()["networks"] == []
        assert cloud.get(f"{NETWORKS}/{net_id}", outsider).status_code == 404
        rename = {"network": {"name": "taken"}}
        assert (
            cloud.request("PUT", f"{NETWORKS}/{net_id}", outsider, json=rename).status_code == 404
        )
        assert cloud.request("DELETE", f"{NETWORKS}/{net_id}", outsider).status_code == 404
        into_alpha = {"network": {"name": "planted", "project_id": alpha}}
        assert cloud.request("POST", NETWORKS, outsider, json=into_alpha).status_code == 403
    shown = cloud.get(f"{NETWORKS}/{net_id}", alice).json()["network"]
    assert shown["name"] == "alpha-only"
    assert cloud.request("DELETE", f"{NETWORKS}/{net_id}", alice).status_code == 204


def test_a_revoked_token_stops_working_within_the_cache_time(
    keystone_cloud: KeystoneCloud,
) -> None:
    cloud = keystone_cloud
    token = cloud.token("alice", "alpha")
    assert cloud.get(NETWORKS, token).status_code == 200  # validated, now cached
    validated_at = time.monotonic()
    cloud.revoke(token)
    assert cloud.get(NETWORKS, token).status_code in (200, 401)  # cached, or already expired
    status, deadline = 200, validated_at + TOKEN_CACHE_SECONDS + 2
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.25)
        status = cloud.get(NETWORKS, token).status_code
    _refused(cloud.get(NETWORKS, token), cloud)
    assert cloud.get(NETWORKS, cloud.token("alice", "alpha")).status_code == 200


def test_an_expired_token_is_401_unless_a_service_vouches(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    # Keystone ends a token when its application credential expires: a real,
    # signed token that expires in a few seconds.
    ends = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=4)
    cred_id, secret = cloud.application_credential("alice", "alpha", expires_at=ends)
    token = cloud.app_credential_token(secret, cred_id)
    assert cloud.get(NETWORKS, token).status_code == 200
    time.sleep(max(0.0, (ends - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
    _refused(cloud.get(NETWORKS, token), cloud)
    # keystonemiddleware's allow_expired: a service token with the service
    # role lets an expired user token through (long-running operations).
    service = cloud.token("segmentd", "service")
    vouched = cloud.get(NETWORKS, token, X_Service_Token=service)
    assert vouched.status_code == 200, vouched.text
    # A token without a role in service_token_roles is no service token.
    _refused(cloud.get(NETWORKS, token, X_Service_Token=cloud.token("bob", "beta")), cloud)


def test_service_tokens(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    alice, service = cloud.token("alice", "alpha"), cloud.token("segmentd", "service")
    usage = "/v2.0/network-segment-range-usage"
    # The policy override admits a caller whose request a service vouches for
    # (refused, the list is empty, as for any admin-only list).
    assert cloud.get(usage, alice).json()["network_segment_range_usage"] == []
    vouched = cloud.get(usage, alice, X_Service_Token=service).json()
    assert vouched["network_segment_range_usage"] != []
    # An invalid or role-less service token refuses the whole request.
    _refused(cloud.get(usage, alice, X_Service_Token="gAAAAAB" + secrets.token_urlsafe(180)), cloud)
    _refused(cloud.get(NETWORKS, alice, X_Service_Token=cloud.token("rita", "alpha")), cloud)
    # A service token alone is not a caller.
    _refused(cloud.get(NETWORKS, None, X_Service_Token=service), cloud)


def test_system_scope_reaches_policy(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    system = cloud.token("admin", system=True)
    # A system-scoped token has no project: it must name the owner.
    no_owner = cloud.request("POST", NETWORKS, system, json={"network": {"name": "orphan"}})
    assert no_owner.status_code == 400
    assert "project_id" in no_owner.json()["NeutronError"]["message"]
    beta = cloud.projects["beta"]
    body = {"network": {"name": "for-beta", "project_id": beta}}
    created = cloud.request("POST", NETWORKS, system, json=body)
    assert created.status_code == 201, created.text
    net_id = created.json()["network"]["id"]
    assert cloud.get(f"{NETWORKS}/{net_id}", cloud.token("bob", "beta")).status_code == 200
    # The policy override: the audit trail is for system-scoped admins only.
    trail = f"/v2.0/audit-events?resource_id={net_id}"
    assert cloud.get(trail, cloud.token("admin", "admin")).json()["audit_events"] == []
    (event,) = cloud.get(trail, system).json()["audit_events"]
    assert (event["user_id"], event["project_id"]) == (cloud.users["admin"], None)
    assert cloud.request("DELETE", f"{NETWORKS}/{net_id}", system).status_code == 204


def test_application_credential_access_rules(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    rules = [{"service": "network", "method": "GET", "path": "/v2.0/networks"}]
    cred_id, secret = cloud.application_credential("alice", "alpha", access_rules=rules)
    token = cloud.app_credential_token(secret, cred_id)
    assert cloud.get(NETWORKS, token).status_code == 200
    _refused(cloud.get("/v2.0/subnets", token), cloud)
    refused = cloud.request("POST", NETWORKS, token, json={"network": {"name": "nope"}})
    _refused(refused, cloud)
    unrestricted_id, unrestricted = cloud.application_credential("alice", "alpha")
    free = cloud.app_credential_token(unrestricted, unrestricted_id)
    assert cloud.get("/v2.0/subnets", free).status_code == 200


def test_keystone_unreachable_is_503_never_401_or_200(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    seen = cloud.token("alice", "alpha")
    assert cloud.get(NETWORKS, seen).status_code == 200  # cached for a few seconds
    unseen = cloud.token("alice", "alpha")
    forged = "gAAAAAB" + secrets.token_urlsafe(180)
    assert cloud.proxy is not None
    cloud.proxy.stop()  # segmentd's way to Keystone (the internal endpoint) is cut
    try:
        for token in (unseen, forged):
            resp = cloud.get(NETWORKS, token)
            assert resp.status_code == 503, resp.text
            assert int(resp.headers["Retry-After"]) > 0
            assert resp.json()["NeutronError"]["type"] == "IdentityUnavailable"
        assert cloud.get(NETWORKS, seen).status_code == 200  # validated moments ago
        _refused(cloud.get(NETWORKS, None), cloud)  # no token needs no Keystone
    finally:
        cloud.proxy.start()
    assert cloud.get(NETWORKS, unseen).status_code == 200  # back, without a restart
    _refused(cloud.get(NETWORKS, forged), cloud)
