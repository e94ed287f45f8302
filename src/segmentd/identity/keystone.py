"""Tokens of an external Keystone, validated with keystonemiddleware's semantics.

``auth_strategy = "keystone"``: the caller's ``X-Auth-Token`` (and an
optional ``X-Service-Token``) are validated by ``GET /v3/auth/tokens`` as
this service's own user, configured in ``[keystone_authtoken]`` under
keystonemiddleware's option names.  What ``auth_token`` does, this does:

- a token Keystone does not know (404), or that has expired, is refused
  (``InvalidToken``: 401); Keystone unreachable, failing, or refusing this
  service's credentials is ``IdentityUnavailable`` (503): an unvalidated
  token never gets through and is never called invalid either;
- validations are cached for ``token_cache_time`` (``keystone_cache``),
  never beyond the token's expiry, so a revocation takes effect within it;
- an ``X-Service-Token`` is valid only with one of ``service_token_roles``
  (when ``service_token_roles_required``, the default); with such a token a
  user token past its expiry is still accepted (``allow_expired``, as for
  long-running operations between services); an invalid service token
  refuses the request;
- an application credential with access rules may only make the requests
  its rules name for this ``service_type`` (checked unless a valid service
  token vouches for the request).

No web framework here: the API layer hands in header values, the method and
the path, and gets a ``KeystoneIdentity`` (or ``principal_of`` it).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from segmentd import errors
from segmentd.authz import Policy, Principal
from segmentd.config import KeystoneAuthtoken
from segmentd.identity.keystone_cache import TokenCache, build_cache

log = logging.getLogger("segmentd.identity")

# Printable ASCII without spaces: what Fernet and JWS tokens are made of.  A
# value outside it is refused before it reaches Keystone (or an HTTP header).
_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}")
ACCESS_RULES_HEADER = "OpenStack-Identity-Access-Rules"
ACCESS_RULES_VERSION = "1"  # the access-rules support keystonemiddleware declares


@dataclass(frozen=True, slots=True)
class AccessRule:
    service: str
    method: str
    path: str

    def allows(self, service_type: str, method: str, path: str) -> bool:
        return (
            self.service == service_type
            and self.method == method
            and _path_pattern(self.path).fullmatch(path) is not None
        )


def _path_pattern(rule: str) -> re.Pattern[str]:
    """keystonemiddleware's ``_path_matches``: ``*`` and ``{name}`` one segment, ``**`` any."""
    out = []
    for part in re.finditer(r"(\{[^}]*\})|(\*\*)|(\*)|([^{}*]+)", rule):
        tag, any_depth, one, literal = part.groups()
        if tag or one:
            out.append(r"[^/]+")
        elif any_depth:
            out.append(".*")
        else:
            out.append(re.escape(literal))
    return re.compile("".join(out))


@dataclass(frozen=True, slots=True)
class ValidatedToken:
    """What Keystone said about one token (the ``token`` object of its answer)."""

    user_id: str
    user_name: str
    user_domain_id: str
    expires_at: dt.datetime
    roles: tuple[str, ...] = ()
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None  # a domain-scoped token's domain
    system_scope: str | None = None  # "all" for a system-scoped token
    is_admin_project: bool = True
    application_credential_id: str | None = None
    # None: unrestricted; a tuple: the only requests the credential may make.
    access_rules: tuple[AccessRule, ...] | None = None

    @classmethod
    def from_keystone(cls, token: dict[str, Any]) -> ValidatedToken:
        user = token["user"]
        project = token.get("project") or {}
        app_cred = token.get("application_credential") or {}
        rules = app_cred.get("access_rules")
        return cls(
            user_id=str(user["id"]),
            user_name=str(user.get("name", "")),
            user_domain_id=str((user.get("domain") or {}).get("id", "")),
            expires_at=dt.datetime.fromisoformat(token["expires_at"]),
            roles=tuple(str(role["name"]) for role in token.get("roles") or ()),
            project_id=project.get("id"),
            project_name=project.get("name"),
            project_domain_id=(project.get("domain") or {}).get("id"),
            domain_id=(token.get("domain") or {}).get("id"),
            system_scope="all" if (token.get("system") or {}).get("all") else None,
            is_admin_project=bool(token.get("is_admin_project", True)),
            application_credential_id=app_cred.get("id"),
            access_rules=None
            if rules is None
            else tuple(AccessRule(r["service"], r["method"], r["path"]) for r in rules),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat()
        data["roles"] = list(self.roles)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValidatedToken:
        rules = data.get("access_rules")
        return cls(
            **{
                **data,
                "expires_at": dt.datetime.fromisoformat(data["expires_at"]),
                "roles": tuple(data["roles"]),
                "access_rules": None if rules is None else tuple(AccessRule(**r) for r in rules),
            }
        )


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What validation needs from a request: its token headers, method and path."""

    token: str | None
    service_token: str | None
    method: str
    path: str
    now: dt.datetime


@dataclass(frozen=True, slots=True)
class KeystoneIdentity:
    """A request's validated caller, and the service that vouches for it, if any."""

    user: ValidatedToken
    service: ValidatedToken | None = None


def principal_of(identity: KeystoneIdentity, policy: Policy) -> Principal:
    """The principal policy sees: Keystone's roles as they are (implied roles expanded)."""
    user = identity.user
    return Principal(
        subject=user.user_id,
        # A token scoped to the system or a domain belongs to no project.
        project_id=user.project_id or "",
        roles=frozenset(user.roles),
        credential="token",
        policy=policy,
        name=user.user_name,
        system_scope=user.system_scope,
        domain_id=user.domain_id,
        user_domain_id=user.user_domain_id,
        project_domain_id=user.project_domain_id,
        service_roles=frozenset(identity.service.roles) if identity.service else frozenset(),
    )


class IdentityApi(Protocol):
    """Keystone's token validation call (``KeystoneClient``)."""

    def validate(self, token: str, allow_expired: bool) -> dict[str, Any] | None: ...


TokenLookup = Callable[[str, bool], "ValidatedToken | None"]


@dataclass
class KeystoneValidator:
    """Validates tokens at Keystone through a bounded cache; one per process."""

    api: IdentityApi
    cache: TokenCache[ValidatedToken]
    service_token_roles: frozenset[str] = frozenset({"service"})
    service_token_roles_required: bool = True
    service_type: str = "network"

    def cached(self, request: TokenRequest) -> KeystoneIdentity | None:
        """The caller from this process's cache alone (no I/O); None: call ``validate``."""
        try:
            return self._identify(request, self._local)
        except errors.NotAuthenticated:
            return None  # ``validate`` decides, and the caller counts the failure

    def validate(self, request: TokenRequest) -> KeystoneIdentity:
        """The caller, asking Keystone for what the caches do not hold.

        ``InvalidToken`` (401) or ``IdentityUnavailable`` (503).
        """
        identity = self._identify(request, self._fetched)
        if identity is None:  # only the local lookup misses; kept for the type checker
            raise errors.InvalidToken()
        return identity

    def _identify(self, request: TokenRequest, lookup: TokenLookup) -> KeystoneIdentity | None:
        service = None
        allow_expired = False
        if request.service_token and request.service_token.strip():  # empty: none sent
            service = lookup(request.service_token.strip(), False)
            if service is None:
                return None
            _require_live(service, request.now)
            vouched = bool(self.service_token_roles.intersection(service.roles))
            if self.service_token_roles_required and not vouched:
                log.info("service token without a role in service_token_roles refused")
                raise errors.InvalidToken()
            allow_expired = vouched
        # Clients have sent trailing whitespace (LP 1689468); the format is
        # checked before Keystone is asked (a cached token passed that check).
        user = lookup((request.token or "").strip(), allow_expired)
        if user is None:
            return None
        if not allow_expired:
            _require_live(user, request.now)
        if user.access_rules is not None and service is None:
            allowed = (
                r.allows(self.service_type, request.method, request.path) for r in user.access_rules
            )
            if not any(allowed):
                log.info(
                    "application credential %s: no access rule", user.application_credential_id
                )
                raise errors.InvalidToken()
        return KeystoneIdentity(user, service)

    def _local(self, token: str, allow_expired: bool) -> ValidatedToken | None:
        return self.cache.local(self.cache.key(token))

    def _fetched(self, token: str, allow_expired: bool) -> ValidatedToken:
        key = self.cache.key(token)
        found = self.cache.get(key)
        if found is not None:
            return found
        if not _TOKEN.fullmatch(token):
            raise errors.InvalidToken()
        body = self.api.validate(token, allow_expired)
        if body is None:
            raise errors.InvalidToken()
        try:
            found = ValidatedToken.from_keystone(body)
        except (KeyError, TypeError, ValueError):
            log.warning("keystone answered a token body without user or expiry")
            raise errors.InvalidToken() from None
        self.cache.put(key, found, found.expires_at.timestamp())
        return found


def _require_live(token: ValidatedToken, now: dt.datetime) -> None:
    if token.expires_at <= now:
        raise errors.InvalidToken()


class KeystoneClient:
    """``GET /v3/auth/tokens`` as the service user, through keystoneauth1.

    The identity endpoint comes from the service user's catalog (interface
    and region as configured), found by version discovery, as
    keystonemiddleware does.  keystoneauth1 re-authenticates once when
    Keystone answers 401 (the service token expired or was revoked).
    """

    def __init__(self, conf: KeystoneAuthtoken) -> None:
        from keystoneauth1 import adapter, session
        from keystoneauth1.identity import generic

        if conf.password is None or conf.auth_url is None:
            raise ValueError("keystone_authtoken: auth_url and password are required")
        auth = generic.Password(
            auth_url=conf.auth_url,
            username=conf.username,
            password=conf.password.get_secret_value(),
            project_name=conf.project_name,
            user_domain_name=conf.user_domain_name,
            project_domain_name=conf.project_domain_name,
        )
        verify: bool | str = conf.cafile or not conf.insecure
        sess = session.Session(
            auth=auth, timeout=conf.http_connect_timeout, verify=verify, user_agent="segmentd"
        )
        self._adapter = adapter.Adapter(
            sess,
            service_type="identity",
            interface=conf.interface,
            region_name=conf.region_name,
            version="3.0",
            connect_retries=conf.http_request_max_retries,
        )

    def validate(self, token: str, allow_expired: bool) -> dict[str, Any] | None:
        """The token's body; None when Keystone does not know it (404)."""
        from keystoneauth1 import exceptions as ksa

        params = {"nocatalog": "1", **({"allow_expired": "1"} if allow_expired else {})}
        headers = {"X-Subject-Token": token, ACCESS_RULES_HEADER: ACCESS_RULES_VERSION}
        try:
            resp = self._adapter.get(
                "/auth/tokens", headers=headers, params=params, raise_exc=False
            )
        except ksa.ClientException as exc:  # unreachable, timed out, no endpoint, login refused
            log.error("keystone: cannot validate tokens: %s", type(exc).__name__)
            raise errors.IdentityUnavailable() from None
        if resp.status_code in (400, 404):
            return None
        if resp.status_code != 200:
            # 401/403: this service's own user is refused or lacks the role
            # to validate tokens (the service role); 5xx: Keystone is failing.
            log.error("keystone: token validation answered %s", resp.status_code)
            raise errors.IdentityUnavailable()
        try:
            token_body: dict[str, Any] = resp.json()["token"]
        except (ValueError, KeyError, TypeError):
            log.error("keystone: token validation answered a body without a token")
            raise errors.IdentityUnavailable() from None
        return token_body


def build_validator(conf: KeystoneAuthtoken, cache_prefix: str) -> KeystoneValidator:
    password = conf.password.get_secret_value() if conf.password else ""
    cache = build_cache(
        conf.token_cache_url,
        conf.token_cache_time,
        conf.token_cache_max_entries,
        password,
        cache_prefix,
        (ValidatedToken.to_json, ValidatedToken.from_json),
    )
    return KeystoneValidator(
        api=KeystoneClient(conf),
        cache=cache,
        service_token_roles=frozenset(conf.service_token_roles),
        service_token_roles_required=conf.service_token_roles_required,
        service_type=conf.service_type,
    )
