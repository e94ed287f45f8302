"""Opaque bearer tokens: 256 random bits, stored only as their SHA-256.

A token is looked up by its hash (an indexed primary-key read), so the
database never holds anything that authenticates; the one comparison in
Python is constant-time.  Expiry and revocation are checked on every use, and
roles are read at validation time, so removing a role takes effect at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.authz import Scope
from segmentd.db.base import utcnow
from segmentd.db.identity import Project, Token, User
from segmentd.identity import store
from segmentd.identity.passwords import Passwords

TOKEN_BYTES = 32  # 256 bits
MAX_TOKEN_LEN = 512


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    user_id: str
    user_name: str
    user_domain_id: str
    project_id: str
    project_name: str
    project_domain_id: str
    roles: tuple[str, ...]
    kind: str
    methods: tuple[str, ...]
    audit_id: str
    issued_at: dt.datetime
    expires_at: dt.datetime


def _info(token: Token, user: User, project: Project, roles: Sequence[str]) -> TokenInfo:
    return TokenInfo(
        user_id=user.id,
        user_name=user.name,
        user_domain_id=user.domain_id,
        project_id=project.id,
        project_name=project.name,
        project_domain_id=project.domain_id,
        roles=tuple(roles),
        kind=token.kind,
        methods=tuple(token.methods.split(",")),
        audit_id=token.audit_id,
        issued_at=token.issued_at,
        expires_at=token.expires_at,
    )


def issue(
    session: Session,
    user: User,
    project: Project,
    now: dt.datetime,
    ttl_seconds: int,
    kind: str = "token",
    methods: Sequence[str] = ("password",),
    new_hash: str | None = None,
) -> tuple[str, TokenInfo]:
    """A new token for ``user`` scoped to ``project``; the raw value is returned once.

    ``new_hash``: the user's password rehashed with today's parameters.
    """
    roles = store.roles_on(session, user.id, project.id)
    if not roles or not user.enabled or not project.enabled:
        raise errors.InvalidCredentials()
    if new_hash is not None:
        store.set_password_hash(session, user.id, new_hash)
    # Expired tokens of this user go when it logs in again: bounded housekeeping.
    session.execute(delete(Token).where(Token.user_id == user.id, Token.expires_at < now))
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    token = Token(
        token_hash=hash_token(raw),
        user_id=user.id,
        project_id=project.id,
        kind=kind,
        methods=",".join(methods),
        audit_id=secrets.token_urlsafe(16)[:22],
        issued_at=now,
        expires_at=now + dt.timedelta(seconds=ttl_seconds),
    )
    session.add(token)
    session.flush()
    return raw, _info(token, user, project, roles)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What a password login names, read before the password is checked.

    Logging in runs in three steps so that the password hash, hundreds of
    milliseconds of CPU and tens of MiB, is computed outside any
    transaction (and, on SQLite, outside the one write slot): ``find_login``
    reads, ``check_password`` hashes, ``issue`` writes.
    """

    user: User | None
    project: Project | None
    stored_hash: str | None


def find_login(
    session: Session, user_ref: store.Ref, project_ref: store.Ref | None
) -> LoginAttempt:
    user = store.find_user(session, user_ref)
    project = None
    if user is not None and project_ref is None and user.default_project_id:
        project = session.get(Project, user.default_project_id)
    elif user is not None and project_ref is not None:
        project = store.find_project(session, project_ref)
    return LoginAttempt(user, project, user.password_hash if user else None)


def check_password(passwords: Passwords, attempt: LoginAttempt, password: str) -> str | None:
    """``InvalidCredentials`` unless ``password`` is right; every failure
    looks the same and costs the same.  Returns a new hash when the stored
    one uses weaker parameters than configured (stored by ``issue``)."""
    if not passwords.verify(attempt.stored_hash, password) or attempt.user is None:
        raise errors.InvalidCredentials()
    if attempt.project is None:
        raise errors.InvalidCredentials()
    if attempt.stored_hash and passwords.needs_rehash(attempt.stored_hash):
        return passwords.hash(password)
    return None


def validate(session: Session, raw: str | None, now: dt.datetime) -> TokenInfo:
    """The live token ``raw`` names, or ``InvalidToken``."""
    if not raw or len(raw) > MAX_TOKEN_LEN:
        raise errors.InvalidToken()
    digest = hash_token(raw)
    row = session.execute(
        select(Token, User, Project)
        .join(User, User.id == Token.user_id)
        .join(Project, Project.id == Token.project_id)
        .where(Token.token_hash == digest)
    ).first()
    if row is None:
        raise errors.InvalidToken()
    token, user, project = row
    if not hmac.compare_digest(token.token_hash, digest):
        raise errors.InvalidToken()
    if token.revoked_at is not None or token.expires_at <= now:
        raise errors.InvalidToken()
    if not user.enabled or not project.enabled:
        raise errors.InvalidToken()
    roles = store.roles_on(session, user.id, project.id)
    if not roles:
        raise errors.InvalidToken()
    return _info(token, user, project, roles)


class TokenCache:
    """Recently validated tokens, so a request costs no identity queries.

    keystonemiddleware caches validations for 300 s by default; this keeps
    them only ``ttl_seconds`` (a few seconds), bounded in size, per process.
    Expiry is still checked on every use, a revocation through this process
    takes effect at once, and a revocation or role change made elsewhere
    takes effect within ``ttl_seconds``.  Owned by the runtime, never global.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[TokenInfo, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, now: dt.datetime) -> TokenInfo | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            info, stored = entry
            if self._clock() - stored > self.ttl or info.expires_at <= now:
                del self._entries[digest]
                return None
            return info

    def put(self, digest: str, info: TokenInfo) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # crude but bounded; entries refill on use
            self._entries[digest] = (info, self._clock())

    def discard(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)


def _cache_key(raw: str | None) -> str | None:
    return hash_token(raw) if raw and len(raw) <= MAX_TOKEN_LEN else None


def cached(raw: str | None, now: dt.datetime, cache: TokenCache) -> TokenInfo | None:
    """The cached validation of ``raw``; None when the database must be asked."""
    key = _cache_key(raw)
    return None if key is None else cache.get(key, now)


def validate_cached(
    session: Session, raw: str | None, now: dt.datetime, cache: TokenCache
) -> TokenInfo:
    """``validate`` behind ``cache``."""
    key = _cache_key(raw)
    hit = None if key is None else cache.get(key, now)
    if hit is not None:
        return hit
    info = validate(session, raw, now)
    if key is not None:
        cache.put(key, info)
    return info


def revoke(session: Session, raw: str, now: dt.datetime) -> None:
    result = session.execute(
        update(Token)
        .where(Token.token_hash == hash_token(raw), Token.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise errors.TokenNotFound()


def subject(session: Session, scope: Scope, raw: str, lock: bool = False) -> TokenInfo:
    """The live token ``raw`` (an ``X-Subject-Token``), or 404.

    A token is named by its secret value, so whoever names it already
    knows it: existence is no secret, and the pipeline's policy check on
    the loaded token answers 403 as Keystone does (its own user, an admin
    or a service may validate and revoke it)."""
    try:
        return validate(session, raw, utcnow())
    except errors.InvalidToken:
        raise errors.TokenNotFound() from None


def target(info: TokenInfo) -> dict[str, object]:
    return {"user_id": info.user_id, "project_id": info.project_id}


def snapshot(info: TokenInfo) -> dict[str, object]:
    """What the audit trail keeps of a token: never the token itself."""
    return {
        "user_id": info.user_id,
        "project_id": info.project_id,
        "audit_id": info.audit_id,
        "expires_at": info.expires_at.isoformat(),
    }
