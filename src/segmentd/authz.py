"""Who may do what: the permission vocabulary, the policy, and query scoping.

Permission names are Neutron's policy rule names and the defaults are
Neutron's secure-RBAC defaults, so an operator's policy file carries over.
Rules are evaluated by oslo.policy; that choice stays behind this module.
Callers ask in two words: ``Scope.where`` (the rows a principal may see
under a permission, as SQL) and ``require``; ``can`` is the primitive both
use, and what per-attribute rules (``get_network:provider:...``) ask
directly.  Nothing here knows about HTTP.

Deny by default: a principal without a policy, a rule that is not
registered, or a rule that fails to evaluate refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, false, or_, true

from segmentd import errors


class Permission(StrEnum):
    CONTEXT_IS_ADMIN = "context_is_admin"
    # Networks
    CREATE_NETWORK = "create_network"
    CREATE_NETWORK_SHARED = "create_network:shared"
    CREATE_NETWORK_SEGMENTS = "create_network:segments"
    CREATE_NETWORK_ROUTER_EXTERNAL = "create_network:router:external"
    CREATE_NETWORK_PROVIDER_NETWORK_TYPE = "create_network:provider:network_type"
    CREATE_NETWORK_PROVIDER_PHYSICAL_NETWORK = "create_network:provider:physical_network"
    CREATE_NETWORK_PROVIDER_SEGMENTATION_ID = "create_network:provider:segmentation_id"
    GET_NETWORK = "get_network"
    GET_NETWORK_SEGMENTS = "get_network:segments"
    GET_NETWORK_PROVIDER_NETWORK_TYPE = "get_network:provider:network_type"
    GET_NETWORK_PROVIDER_PHYSICAL_NETWORK = "get_network:provider:physical_network"
    GET_NETWORK_PROVIDER_SEGMENTATION_ID = "get_network:provider:segmentation_id"
    UPDATE_NETWORK = "update_network"
    UPDATE_NETWORK_SHARED = "update_network:shared"
    UPDATE_NETWORK_SEGMENTS = "update_network:segments"
    UPDATE_NETWORK_ROUTER_EXTERNAL = "update_network:router:external"
    UPDATE_NETWORK_PROVIDER_NETWORK_TYPE = "update_network:provider:network_type"
    UPDATE_NETWORK_PROVIDER_PHYSICAL_NETWORK = "update_network:provider:physical_network"
    UPDATE_NETWORK_PROVIDER_SEGMENTATION_ID = "update_network:provider:segmentation_id"
    DELETE_NETWORK = "delete_network"
    # Segments
    CREATE_SEGMENT = "create_segment"
    GET_SEGMENT = "get_segment"
    UPDATE_SEGMENT = "update_segment"
    DELETE_SEGMENT = "delete_segment"
    # Network segment ranges
    CREATE_NETWORK_SEGMENT_RANGE = "create_network_segment_range"
    GET_NETWORK_SEGMENT_RANGE = "get_network_segment_range"
    UPDATE_NETWORK_SEGMENT_RANGE = "update_network_segment_range"
    DELETE_NETWORK_SEGMENT_RANGE = "delete_network_segment_range"
    # Subnets
    CREATE_SUBNET = "create_subnet"
    CREATE_SUBNET_SEGMENT_ID = "create_subnet:segment_id"
    GET_SUBNET = "get_subnet"
    GET_SUBNET_SEGMENT_ID = "get_subnet:segment_id"
    UPDATE_SUBNET = "update_subnet"
    UPDATE_SUBNET_SEGMENT_ID = "update_subnet:segment_id"
    DELETE_SUBNET = "delete_subnet"
    # Agents and host mappings (for the agents resource)
    CREATE_AGENT_REPORT = "create_agent_report"
    GET_AGENT = "get_agent"
    UPDATE_AGENT = "update_agent"
    DELETE_AGENT = "delete_agent"
    GET_SEGMENT_HOST_MAPPING = "get_segment_host_mapping"
    # Operations: the audit trail and allocation usage
    GET_AUDIT_EVENT = "get_audit_event"
    GET_ALLOCATION_USAGE = "get_allocation_usage"
    # Quotas
    GET_QUOTA = "get_quota"
    UPDATE_QUOTA = "update_quota"
    DELETE_QUOTA = "delete_quota"
    # What any authenticated caller may read: versions, extensions, the API schema
    GET_API_DISCOVERY = "get_api_discovery"
    # The built-in identity service (Keystone's rule names)
    VALIDATE_TOKEN = "identity:validate_token"  # noqa: S105 - a rule name
    REVOKE_TOKEN = "identity:revoke_token"  # noqa: S105 - a rule name
    GET_PROJECT = "identity:get_project"
    LIST_PROJECTS = "identity:list_projects"
    LIST_USERS = "identity:list_users"
    GET_USER = "identity:get_user"
    LIST_ROLES = "identity:list_roles"
    GET_ROLE = "identity:get_role"
    LIST_ROLE_ASSIGNMENTS = "identity:list_role_assignments"
    # The identity write calls, always refused naming the segmentd command.
    REACH_IDENTITY_WRITES = "identity:reach_writes"


# Neutron's secure-RBAC building blocks (neutron/conf/policies/base.py).
ADMIN = "rule:context_is_admin"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
ADMIN_OR_PROJECT_MEMBER = f"({ADMIN}) or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"({ADMIN}) or ({PROJECT_READER})"
ADMIN_OR_SERVICE = f"({ADMIN}) or rule:service_api"
# Subnets: a member of the project may add them only to the project's own
# networks; the subnet's project or the network's owner may change them.
NET_OWNER = "project_id:%(network:project_id)s"
ADMIN_OR_NET_OWNER_MEMBER = (
    f"({ADMIN}) or (role:member and project_id:%(project_id)s and {NET_OWNER})"
)
ADMIN_OR_SUBNET_WRITER = (
    f"({ADMIN}) or (role:member and (project_id:%(project_id)s or {NET_OWNER}))"
)
TOKEN_SUBJECT = f"({ADMIN_OR_SERVICE}) or user_id:%(user_id)s"
OWN_PROJECT = f"({ADMIN}) or project_id:%(project_id)s"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    check: str
    description: str


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("context_is_admin", "role:admin", "Holds the admin role"),
    Rule("service_api", "role:service", "Holds the service role (agents, other services)"),
    Rule("shared", "True:%(shared)s", "The resource is shared with all projects"),
    Rule("external", "True:%(router:external)s", "The network is external (router:external)"),
    Rule(
        "external_network",
        "True:%(router:external)s",
        "The subnet's network is external (router:external)",
    ),
    Rule("default", "!", "Anything not named here is refused"),
    Rule("create_network", ADMIN_OR_PROJECT_MEMBER, "Create a network"),
    Rule("create_network:shared", ADMIN, "Create a shared network"),
    Rule("create_network:segments", ADMIN, "Specify segments when creating a network"),
    Rule("create_network:router:external", ADMIN, "Create an external network"),
    Rule("create_network:provider:network_type", ADMIN, "Specify provider:network_type"),
    Rule("create_network:provider:physical_network", ADMIN, "Specify provider:physical_network"),
    Rule("create_network:provider:segmentation_id", ADMIN, "Specify provider:segmentation_id"),
    Rule(
        "get_network",
        f"{ADMIN_OR_PROJECT_READER} or rule:shared or rule:external",
        "Show a network",
    ),
    Rule("get_network:segments", ADMIN, "See the segments attribute of a network"),
    Rule("get_network:provider:network_type", ADMIN, "See provider:network_type"),
    Rule("get_network:provider:physical_network", ADMIN, "See provider:physical_network"),
    Rule("get_network:provider:segmentation_id", ADMIN, "See provider:segmentation_id"),
    Rule("update_network", ADMIN_OR_PROJECT_MEMBER, "Update a network"),
    Rule("update_network:shared", ADMIN, "Change the shared attribute"),
    Rule("update_network:segments", ADMIN, "Update the segments attribute"),
    Rule("update_network:router:external", ADMIN, "Change the router:external attribute"),
    Rule("update_network:provider:network_type", ADMIN, "Update provider:network_type"),
    Rule("update_network:provider:physical_network", ADMIN, "Update provider:physical_network"),
    Rule("update_network:provider:segmentation_id", ADMIN, "Update provider:segmentation_id"),
    Rule("delete_network", ADMIN_OR_PROJECT_MEMBER, "Delete a network"),
    Rule("create_segment", ADMIN, "Create a segment"),
    Rule("get_segment", ADMIN, "Show a segment"),
    Rule("update_segment", ADMIN, "Update a segment"),
    Rule("delete_segment", ADMIN, "Delete a segment"),
    Rule(
        "create_subnet",
        ADMIN_OR_NET_OWNER_MEMBER,
        "Create a subnet (on a network the project owns)",
    ),
    Rule("create_subnet:segment_id", ADMIN, "Specify segment_id when creating a subnet"),
    Rule(
        "get_subnet",
        f"{ADMIN_OR_PROJECT_READER} or rule:shared or rule:external_network",
        "Show a subnet",
    ),
    Rule("get_subnet:segment_id", ADMIN, "See the segment_id of a subnet"),
    Rule("update_subnet", ADMIN_OR_SUBNET_WRITER, "Update a subnet"),
    Rule("update_subnet:segment_id", ADMIN, "Change the segment_id of a subnet"),
    Rule("delete_subnet", ADMIN_OR_SUBNET_WRITER, "Delete a subnet"),
    Rule("create_network_segment_range", ADMIN, "Create a network segment range"),
    Rule("get_network_segment_range", ADMIN, "Show network segment ranges"),
    Rule("update_network_segment_range", ADMIN, "Update a network segment range"),
    Rule("delete_network_segment_range", ADMIN, "Delete a network segment range"),
    Rule("create_agent_report", ADMIN_OR_SERVICE, "Report an agent's state and mappings"),
    Rule("get_agent", ADMIN, "Show agents"),
    Rule("update_agent", ADMIN, "Update an agent's admin_state_up or description"),
    Rule("delete_agent", ADMIN, "Delete an agent and its host mappings"),
    Rule("get_segment_host_mapping", ADMIN, "Show segment-host mappings"),
    Rule("get_audit_event", ADMIN, "List the audit trail"),
    Rule("get_allocation_usage", ADMIN, "Show used and free segmentation IDs per range"),
    Rule("get_quota", ADMIN_OR_PROJECT_READER, "Show a project's quotas and usage"),
    Rule("update_quota", ADMIN, "Set a project's quotas"),
    Rule("delete_quota", ADMIN, "Reset a project's quotas to the defaults"),
    Rule("get_api_discovery", "@", "List API versions, resources, extensions and the schema"),
    # Keystone's service_admin_or_token_subject: a token's own user, an
    # admin, or a service (which validates tokens on behalf of others).
    Rule("identity:validate_token", TOKEN_SUBJECT, "Validate a token (X-Subject-Token)"),
    Rule("identity:revoke_token", TOKEN_SUBJECT, "Revoke a token (X-Subject-Token)"),
    Rule("identity:get_project", OWN_PROJECT, "Show a project"),
    Rule("identity:list_projects", OWN_PROJECT, "List projects (others: their token's only)"),
    Rule("identity:list_users", ADMIN, "List users"),
    Rule("identity:get_user", f"({ADMIN}) or user_id:%(user_id)s", "Show a user (or oneself)"),
    Rule("identity:list_roles", ADMIN, "List roles"),
    Rule("identity:get_role", ADMIN, "Show a role"),
    Rule("identity:list_role_assignments", ADMIN, "List role assignments"),
    Rule(
        "identity:reach_writes",
        "@",
        "Reach the identity write calls (answered 403 naming the segmentd command)",
    ),
)

# Keystone's default implied roles: admin implies member implies reader.
IMPLIED_ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"member", "reader"}),
    "member": frozenset({"reader"}),
}

# What a kind of credential may ever do, whatever its roles (warehouse's
# PERMISSION_AUTH_METHODS).  ``None``: limited by roles only.
CREDENTIAL_GRANTS: dict[str, frozenset[Permission] | None] = {
    "token": None,
    "noauth": None,
    "agent": frozenset({Permission.CREATE_AGENT_REPORT}),
}

# A project id no real project has: the target of "someone else's resource".
OTHER_PROJECT = "\x00other-project"


def effective_roles(roles: Iterable[str]) -> frozenset[str]:
    """Roles with their implied roles added (Keystone's implied-role expansion)."""
    out = set(roles)
    for role in list(out):
        out |= IMPLIED_ROLES.get(role, frozenset())
    return frozenset(out)


class Policy:
    """Registered defaults, optionally overridden from a YAML/JSON policy file.

    Built once at start-up and shared read-only.  Rule evaluation is a pure
    function of (rule, target, credentials), so decisions are memoised in a
    bounded per-instance cache: oslo.policy's evaluator costs ~25-150 us a
    call.  The cache key holds only the target attributes the rule (and the
    rules it names) can read: most rules read none or the project, so one
    decision serves every segment or network instead of one per id.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        from oslo_config import cfg
        from oslo_policy import policy as oslo

        _no_rule_check_plugins()
        conf = cfg.ConfigOpts()
        conf([], project="segmentd", default_config_files=[], default_config_dirs=[])
        self._enforcer = oslo.Enforcer(conf, use_conf=False)
        defaults = [
            oslo.RuleDefault(r.name, r.check, description=r.description) for r in DEFAULT_RULES
        ]
        self._enforcer.register_defaults(defaults)
        checks: dict[str, str] = {r.name: r.check for r in DEFAULT_RULES}
        checks.update(overrides or {})
        rules = oslo.Rules.from_dict(checks, default_rule="default")
        _refuse_outbound_checks(rules)
        self._enforcer.set_rules(rules, overwrite=True, use_conf=False)
        self.overrides = dict(overrides or {})
        self._decide = lru_cache(maxsize=8192)(self._evaluate)
        self._read_keys: dict[str, frozenset[str] | None] = {}

    @classmethod
    def from_file(cls, path: str | Path | None) -> Policy:
        if not path:
            return cls()
        from oslo_policy import policy as oslo

        text = Path(path).read_text(encoding="utf-8")
        parsed = oslo.parse_file_contents(text) or {}
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise ValueError(f"policy file {path} must map rule names to check strings")
        return cls(parsed)

    def _evaluate(
        self,
        rule: str,
        target: tuple[tuple[str, Any], ...],
        creds: tuple[tuple[str, Any], ...],
    ) -> bool:
        creds_dict = dict(creds)
        creds_dict["roles"] = sorted(creds_dict["roles"])
        if "service_roles" in creds_dict:
            creds_dict["service_roles"] = list(creds_dict["service_roles"])
        try:
            return bool(self._enforcer.enforce(rule, dict(target), creds_dict))
        except Exception:  # a broken operator rule refuses, it never crashes a request
            return False

    def check(self, rule: str, target: Mapping[str, Any], principal: Principal) -> bool:
        creds = principal.policy_values
        if rule not in self._read_keys:
            self._read_keys[rule] = target_keys_read(self._enforcer.rules, rule)
        keys = self._read_keys[rule]
        shown = target.items() if keys is None else [(k, target[k]) for k in keys if k in target]
        key = tuple(sorted((k, _hashable(v)) for k, v in shown))
        return self._decide(rule, key, creds)

    def rules_table(self) -> list[tuple[str, str]]:
        """(rule, check) for every rule in force, for docs and the CLI."""
        merged = {r.name: r.check for r in DEFAULT_RULES} | self.overrides
        return sorted(merged.items())


_TARGET_REFERENCE = re.compile(r"%\(([^)]+)\)s")
_OUTBOUND_KINDS = frozenset({"http", "https"})


def _no_rule_check_plugins() -> None:
    """oslo.policy looks rule-check plugins up by an entry-point scan the
    first time it parses a rule; the only ones installed are its own
    ``http:``/``https:`` checks, which make an outbound call per decision
    (and import requests: 5 MB a worker).  segmentd uses no plugin, so the
    table is set empty before any rule is parsed (``_checks`` is private:
    tests/security/test_policy.py pins the behaviour)."""
    from oslo_policy import _checks

    if _checks.extension_checks is None:
        _checks.extension_checks = {}


def _refuse_outbound_checks(rules: Mapping[str, Any]) -> None:
    """A policy file's ``http:``/``https:`` check is refused at start-up:
    an authorization decision never waits on (or leaks a target to) another
    server."""
    from oslo_policy import _checks

    def walk(check: Any) -> Iterator[Any]:
        yield check
        for sub in getattr(check, "rules", ()):
            yield from walk(sub)
        if isinstance(check, _checks.NotCheck):
            yield from walk(check.rule)

    for name, rule in rules.items():
        for check in walk(rule):
            if isinstance(check, _checks.GenericCheck) and check.kind in _OUTBOUND_KINDS:
                raise ValueError(
                    f"policy rule {name!r}: {check.kind}: checks are not supported "
                    "(they call another server on every decision)"
                )


def target_keys_read(rules: Mapping[str, Any], rule: str) -> frozenset[str] | None:
    """The target attributes rule ``rule`` can read; None: possibly any.

    Walks oslo.policy's parsed checks: ``kind:%(attr)s`` and ``role:%(attr)s``
    read ``attr``; ``rule:x`` reads what x reads; unknown checks (``http:``,
    plugins) may read the whole target, and so may a rule that is missing.
    """
    from oslo_policy import _checks

    def walk(check: Any, seen: frozenset[str]) -> frozenset[str] | None:
        if isinstance(check, _checks.TrueCheck | _checks.FalseCheck):
            return frozenset()
        if isinstance(check, _checks.AndCheck | _checks.OrCheck):
            read: frozenset[str] = frozenset()
            for sub in check.rules:
                part = walk(sub, seen)
                if part is None:
                    return None
                read |= part
            return read
        if isinstance(check, _checks.NotCheck):
            return walk(check.rule, seen)
        if isinstance(check, _checks.RuleCheck):
            return frozenset() if check.match in seen else named(check.match, seen)
        if isinstance(check, _checks.GenericCheck | _checks.RoleCheck):
            return frozenset(_TARGET_REFERENCE.findall(check.match))
        return None

    def named(name: str, seen: frozenset[str]) -> frozenset[str] | None:
        if name not in rules:
            return None
        return walk(rules[name], seen | {name})

    return named(rule, frozenset())


def _hashable(value: Any) -> Any:
    if isinstance(value, list | set | frozenset | tuple):
        return tuple(sorted(map(str, value)))
    return value


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    # "" for a token scoped to no project (system or domain scope).
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    credential: str = "token"
    policy: Policy | None = field(default=None, compare=False, repr=False)
    name: str = ""
    # Keystone tokens: the rest of what oslo.context hands policy, so rules
    # such as ``role:admin and system_scope:all`` or ``service_roles:service``
    # in an operator's policy file work as they do in Neutron.
    system_scope: str | None = None
    domain_id: str | None = None
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    service_roles: frozenset[str] = field(default_factory=frozenset)
    # Credentials as oslo.policy reads them, built once per principal.
    policy_values: tuple[tuple[str, Any], ...] = field(
        init=False, compare=False, repr=False, default=()
    )

    def __post_init__(self) -> None:
        values: dict[str, Any] = {
            "roles": effective_roles(self.roles),
            "user_id": self.subject,
            "system_scope": self.system_scope,
            "domain_id": self.domain_id,
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
            "service_roles": tuple(sorted(self.service_roles)) or None,
        }
        if self.project_id:  # absent, not "": "project_id:%(project_id)s" must not match ""
            values["project_id"] = values["tenant_id"] = self.project_id
        present = tuple(sorted((k, v) for k, v in values.items() if v is not None))
        object.__setattr__(self, "policy_values", present)

    @property
    def is_admin(self) -> bool:
        return can(self, Permission.CONTEXT_IS_ADMIN, own_target(self))


def own_target(principal: Principal, **attrs: Any) -> dict[str, Any]:
    """The target of a resource in the caller's own project."""
    return {"project_id": principal.project_id, "tenant_id": principal.project_id, **attrs}


def other_target(**attrs: Any) -> dict[str, Any]:
    """The target of a resource in a project that is not the caller's."""
    return {"project_id": OTHER_PROJECT, "tenant_id": OTHER_PROJECT, **attrs}


def credential_allows(principal: Principal, permission: Permission) -> bool:
    """Whether the principal's kind of credential may ever exercise ``permission``."""
    allowed = CREDENTIAL_GRANTS.get(principal.credential, frozenset())
    return allowed is None or permission in allowed


def can(
    principal: Principal, permission: Permission, target: Mapping[str, Any] | None = None
) -> bool:
    """May ``principal`` exercise ``permission`` on ``target``?

    Without a target the question is asked about a resource of the caller's
    own project (Neutron's create-time target).
    """
    if principal.policy is None or not credential_allows(principal, permission):
        return False
    return principal.policy.check(
        str(permission), own_target(principal) if target is None else target, principal
    )


def require(
    principal: Principal, permission: Permission, target: Mapping[str, Any] | None = None
) -> None:
    if not can(principal, permission, target):
        raise errors.Forbidden()


def attribute_permission(action: str, attribute: str) -> Permission | None:
    """``create_network`` + ``shared`` -> the rule guarding that attribute, if any."""
    try:
        return Permission(f"{action}:{attribute}")
    except ValueError:
        return None


class Scope:
    """One decision, in its two forms: which rows ``principal`` may see or act
    on under ``permission`` (``where``, a SQL clause), and whether it may on
    one target (``require``).  Both ask the same policy rule, so an
    operator's override moves the check and the row filter together.

    The request pipeline builds a scope from the permission a route
    declares and hands it to the service; ``checked`` records that the
    service asked, so a forgotten check is caught, not served.
    """

    __slots__ = ("checked", "permission", "principal")

    def __init__(self, principal: Principal, permission: Permission) -> None:
        self.principal = principal
        self.permission = permission
        self.checked = False

    def where(
        self, project: Any = None, shared: Any = None, external: Any = None
    ) -> ColumnElement[bool]:
        """SQL condition selecting the rows the principal may see (NetBox ``restrict``).

        The policy is asked about representative targets (another project's
        private resource, the caller's own, another project's shared one,
        another project's external network) and the answers become a WHERE
        clause.  Resources without a project
        column are all-or-nothing.  A rule reading other attributes is
        applied per object by the loader (``allows``).
        """
        if self.unrestricted():
            return true()
        principal, permission = self.principal, self.permission
        conditions: list[ColumnElement[bool]] = []
        if project is not None and can(principal, permission, own_target(principal, shared=False)):
            conditions.append(project == principal.project_id)
        if shared is not None and can(principal, permission, other_target(shared=True)):
            conditions.append(shared.is_(True))
        external_target = other_target(shared=False, **{"router:external": True})
        if external is not None and can(principal, permission, external_target):
            conditions.append(external.is_(True))
        return or_(*conditions) if conditions else false()

    def unrestricted(self) -> bool:
        """``where``'s first question: may the principal see another project's
        private rows, so every row?  For resources without a project this is
        the whole answer, asked without building a clause."""
        self.checked = True
        return can(self.principal, self.permission, other_target(shared=False))

    def allows(self, target: Mapping[str, Any] | None = None) -> bool:
        self.checked = True
        return can(self.principal, self.permission, target)

    def require(self, target: Mapping[str, Any] | None = None) -> None:
        """403 unless allowed on ``target`` (default: the caller's own project)."""
        if not self.allows(target):
            raise errors.Forbidden()

    def attribute(self, attribute: str) -> Permission | None:
        """The rule guarding one attribute under this scope's action, if any
        (``create_network`` + ``shared`` -> ``create_network:shared``)."""
        return attribute_permission(str(self.permission), attribute)

    def require_attribute(self, attribute: str, target: Mapping[str, Any] | None = None) -> None:
        permission = self.attribute(attribute)
        if permission is not None:
            require(self.principal, permission, target)
