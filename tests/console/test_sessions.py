"""The session store (identity.sessions) for Keystone logins: what is kept,
how long it lasts; the HTTP tests cover built-in logins end to end."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from segmentd import errors
from segmentd.api.runtime import Runtime
from segmentd.db.base import utcnow
from segmentd.db.identity import ConsoleSession
from segmentd.identity import sessions
from segmentd.identity.keystone import ValidatedToken
from segmentd.ui.session import principal_of

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def _validated(expires_at: dt.datetime, roles: tuple[str, ...] = ("member",)) -> ValidatedToken:
    return ValidatedToken(
        user_id="u-1",
        user_name="alice",
        user_domain_id="default",
        expires_at=expires_at,
        roles=roles,
        project_id="p-alpha",
        project_name="alpha",
        project_domain_id="default",
    )


def test_a_keystone_session_keeps_the_token_s_description_not_the_token(
    runtime: Runtime, engine: Engine
) -> None:
    token_expiry = NOW + dt.timedelta(minutes=20)
    validated = _validated(token_expiry)
    with runtime.db.transaction(write=True) as session:
        raw, info = sessions.create_keystone(
            session, validated.to_json(), token_expiry, NOW, absolute_seconds=8 * 3600
        )
    assert info.expires_at == token_expiry  # never outlives its token
    with engine.connect() as conn:
        [row] = conn.execute(select(ConsoleSession)).all()
    assert row.session_hash == sessions.hash_session(raw)
    assert (row.user_id, row.project_id) == (None, None)
    assert row.keystone == validated.to_json()
    with runtime.db.transaction(write=False) as session:
        seen = sessions.validate(session, raw, NOW + dt.timedelta(minutes=5), 1800)
    principal = principal_of(seen, runtime)
    assert (principal.subject, principal.project_id, principal.credential) == (
        "u-1",
        "p-alpha",
        "console",
    )
    assert principal.roles == frozenset({"member"})
    with runtime.db.transaction(write=False) as session, pytest.raises(errors.SessionExpired):
        sessions.validate(session, raw, token_expiry, 1800)


def test_a_token_without_roles_opens_no_session(runtime: Runtime) -> None:
    validated = _validated(NOW + dt.timedelta(hours=1), roles=())
    with runtime.db.transaction(write=True) as session, pytest.raises(errors.InvalidToken):
        sessions.create_keystone(session, validated.to_json(), validated.expires_at, NOW, 60)


def test_a_session_is_one_kind_of_login(runtime: Runtime) -> None:
    with pytest.raises(IntegrityError), runtime.db.transaction(write=True) as session:
        session.add(
            ConsoleSession(
                session_hash="0" * 64,
                created_at=utcnow(),
                last_seen_at=utcnow(),
                expires_at=utcnow(),
            )
        )
        session.flush()
