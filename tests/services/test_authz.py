"""The role grant table, as a table."""

from __future__ import annotations

import pytest

from segmentd import errors
from segmentd.authz import Permission, Principal, can, require

P = Permission
READER_MAY = {P.GET_NETWORK, P.GET_SUBNET}
MEMBER_MAY = READER_MAY | {
    P.CREATE_NETWORK, P.UPDATE_NETWORK, P.DELETE_NETWORK,
    P.CREATE_SUBNET, P.UPDATE_SUBNET, P.DELETE_SUBNET,
}


@pytest.mark.parametrize("permission", list(Permission))
def test_grants(permission: Permission) -> None:
    admin = Principal("a", "p", frozenset({"admin"}))
    member = Principal("m", "p", frozenset({"member"}))
    reader = Principal("r", "p", frozenset({"reader"}))
    nobody = Principal("n", "p", frozenset())
    assert can(admin, permission)
    assert can(member, permission) == (permission in MEMBER_MAY)
    assert can(reader, permission) == (permission in READER_MAY)
    assert not can(nobody, permission)
    with pytest.raises(errors.Forbidden):
        require(nobody, permission)
