"""Web console sessions: a random id in the browser's cookie, a row here.

The cookie holds 256 random bits; the table holds only their SHA-256, so
neither the table nor a log line can be replayed.  A session is checked on
every page: not revoked, within its absolute lifetime, used within the idle
timeout, its user and project enabled and its roles read afresh (a removed
role takes effect on the next page, as with tokens).  The CSRF token of a
session's forms is derived from the session id, so it needs no storage and
cannot be computed without the cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.db.identity import ConsoleSession, Project, User
from segmentd.identity import store

SESSION_BYTES = 32  # 256 bits
MAX_SESSION_LEN = 128
# ``last_seen_at`` is rewritten at most this often: a page view is a read,
# not a write, and the idle timeout is exact to within this many seconds.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def hash_session(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def csrf_token(raw: str) -> str:
    """The forms' token of the session ``raw``: a keyed hash of the secret id."""
    return hmac.new(raw.encode("utf-8", "surrogateescape"), b"segmentd-csrf", "sha256").hexdigest()


def csrf_matches(raw: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(raw), given or "")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_hash: str
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[str, ...]
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    # A Keystone login: what Keystone said of its token (``ValidatedToken.to_json``).
    keystone: dict[str, Any] | None = None

    def idle_since(self, now: dt.datetime) -> dt.timedelta:
        return now - self.last_seen_at


def create(
    session: Session,
    user: User,
    project: Project,
    now: dt.datetime,
    absolute_seconds: int,
    new_hash: str | None = None,
) -> tuple[str, SessionInfo]:
    """A new session for ``user`` in ``project``; the raw id is returned once."""
    roles = store.roles_on(session, user.id, project.id)
    if not roles or not user.enabled or not project.enabled:
        raise errors.InvalidCredentials()
    if new_hash is not None:
        store.set_password_hash(session, user.id, new_hash)
    # Ended sessions of this user go when it logs in again: bounded housekeeping.
    session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.user_id == user.id,
            (ConsoleSession.expires_at < now) | ConsoleSession.revoked_at.is_not(None),
        )
    )
    raw = secrets.token_urlsafe(SESSION_BYTES)
    row = ConsoleSession(
        session_hash=hash_session(raw),
        user_id=user.id,
        project_id=project.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=absolute_seconds),
    )
    session.add(row)
    session.flush()
    return raw, _info(row, user, project, roles)


def create_keystone(
    session: Session,
    validated: dict[str, Any],
    token_expires_at: dt.datetime,
    now: dt.datetime,
    absolute_seconds: int,
) -> tuple[str, SessionInfo]:
    """A session for a caller an external Keystone vouched for.  It ends with
    the token it was opened with, at the latest; the token itself is not
    kept, so a revocation in Keystone does not reach it (logging out does)."""
    if not validated.get("roles"):
        raise errors.InvalidToken()
    session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.user_id.is_(None),
            (ConsoleSession.expires_at < now) | ConsoleSession.revoked_at.is_not(None),
        )
    )
    raw = secrets.token_urlsafe(SESSION_BYTES)
    row = ConsoleSession(
        session_hash=hash_session(raw),
        keystone=validated,
        created_at=now,
        last_seen_at=now,
        expires_at=min(now + dt.timedelta(seconds=absolute_seconds), token_expires_at),
    )
    session.add(row)
    session.flush()
    return raw, _external(row, validated)


def _external(row: ConsoleSession, validated: dict[str, Any]) -> SessionInfo:
    return SessionInfo(
        session_hash=row.session_hash,
        user_id=str(validated.get("user_id", "")),
        user_name=str(validated.get("user_name", "")),
        project_id=str(validated.get("project_id") or ""),
        project_name=str(validated.get("project_name") or validated.get("system_scope") or ""),
        roles=tuple(validated.get("roles") or ()),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        keystone=validated,
    )


def _info(row: ConsoleSession, user: User, project: Project, roles: list[str]) -> SessionInfo:
    return SessionInfo(
        session_hash=row.session_hash,
        user_id=user.id,
        user_name=user.name,
        project_id=project.id,
        project_name=project.name,
        roles=tuple(roles),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


def validate(session: Session, raw: str | None, now: dt.datetime, idle_seconds: int) -> SessionInfo:
    """The live session ``raw`` names, or ``SessionExpired``."""
    if not raw or len(raw) > MAX_SESSION_LEN:
        raise errors.SessionExpired()
    digest = hash_session(raw)
    found = session.execute(
        select(ConsoleSession, User, Project)
        .outerjoin(User, User.id == ConsoleSession.user_id)
        .outerjoin(Project, Project.id == ConsoleSession.project_id)
        .where(ConsoleSession.session_hash == digest)
    ).first()
    if found is None:
        raise errors.SessionExpired()
    row, user, project = found
    if not hmac.compare_digest(row.session_hash, digest):
        raise errors.SessionExpired()
    idle = dt.timedelta(seconds=idle_seconds)
    if row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now:
        raise errors.SessionExpired()
    if row.keystone is not None:
        return _external(row, row.keystone)
    if user is None or project is None or not user.enabled or not project.enabled:
        raise errors.SessionExpired()
    roles = store.roles_on(session, user.id, project.id)
    if not roles:
        raise errors.SessionExpired()
    return _info(row, user, project, roles)


def needs_touch(info: SessionInfo, now: dt.datetime) -> bool:
    return info.idle_since(now) >= TOUCH_INTERVAL


def touch(session: Session, session_hash: str, now: dt.datetime) -> None:
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.session_hash == session_hash, ConsoleSession.revoked_at.is_(None))
        .values(last_seen_at=now)
    )


def revoke(session: Session, session_hash: str, now: dt.datetime) -> None:
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.session_hash == session_hash, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
