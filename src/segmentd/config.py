"""One settings object, read from a TOML file and ``SEGMENTD_*`` variables.

Range options keep Neutron's syntax (``physnet1:100:199,physnet2``) so an
operator can copy them from ``ml2_conf.ini``.  Parsing happens once here; the
rest of the service sees typed ranges only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

NETWORK_TYPES = ("flat", "vlan", "vxlan", "geneve", "gre", "local")
TUNNEL_ID_LIMITS = {"vxlan": (1, 2**24 - 1), "geneve": (1, 2**24 - 1), "gre": (1, 2**32 - 1)}
VLAN_ID_LIMITS = (1, 4094)
PHYSNET_MAX_LEN = 64
# Classes of request with their own rate limit (``ratelimit_<class>``).
RATE_CLASSES = ("read", "write", "report", "anonymous", "login", "login_address")
RATE_RE = re.compile(r"[1-9][0-9]{0,8}/(second|minute|hour|day)")


@dataclass(frozen=True, slots=True)
class IdRange:
    """An inclusive range of segmentation IDs for one type (and physnet for VLAN)."""

    network_type: str
    physical_network: str | None
    minimum: int
    maximum: int


def _check_physnet(name: str) -> str:
    if not name or len(name) > PHYSNET_MAX_LEN:
        raise ValueError(f"invalid physical network name {name!r}")
    return name


def parse_vlan_ranges(spec: str) -> tuple[dict[str, list[IdRange]], list[str]]:
    """``physnet1:100:199,physnet2`` -> ranges per physnet, physnets in order."""
    ranges: dict[str, list[IdRange]] = {}
    for raw in filter(None, (part.strip() for part in spec.split(","))):
        name, *bounds = raw.split(":")
        ranges.setdefault(_check_physnet(name), [])
        if not bounds:
            continue
        if len(bounds) != 2:
            raise ValueError(f"invalid VLAN range {raw!r}")
        lo, hi = int(bounds[0]), int(bounds[1])
        if not VLAN_ID_LIMITS[0] <= lo <= hi <= VLAN_ID_LIMITS[1]:
            raise ValueError(f"VLAN range {raw!r} outside 1-4094")
        ranges[name].append(IdRange("vlan", name, lo, hi))
    return ranges, list(ranges)


def parse_tunnel_ranges(network_type: str, spec: str) -> list[IdRange]:
    """``1:1000,2000:3000`` -> ranges, checked against the type's ID space."""
    lo_limit, hi_limit = TUNNEL_ID_LIMITS[network_type]
    out = []
    for raw in filter(None, (part.strip() for part in spec.split(","))):
        lo_s, _, hi_s = raw.partition(":")
        lo, hi = int(lo_s), int(hi_s or lo_s)
        if not lo_limit <= lo <= hi <= hi_limit:
            raise ValueError(f"{network_type} range {raw!r} outside {lo_limit}-{hi_limit}")
        out.append(IdRange(network_type, None, lo, hi))
    return out


def _comma_list(value: Any) -> Any:
    """``service,admin`` (oslo.config's ListOpt syntax) or a list."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class KeystoneAuthtoken(BaseModel):
    """``[keystone_authtoken]``: keystonemiddleware's option names, as in neutron.conf.

    Used when ``auth_strategy = "keystone"``: the service user below logs in
    at ``auth_url`` and validates every caller's token there.
    """

    model_config = ConfigDict(extra="forbid")

    www_authenticate_uri: str | None = Field(
        None,
        description="where clients are told to get a token (401 `WWW-Authenticate`); "
        "unset: `auth_url`",
    )
    auth_url: str | None = Field(None, description="Keystone's URL for the service user's login")
    auth_type: Literal["password"] = Field("password", description="the service user's plugin")
    username: str | None = Field(None, description="the service user")
    password: SecretStr | None = Field(None, description="its password")
    project_name: str | None = Field(None, description="the project it logs in to")
    user_domain_name: str = Field("Default", description="the user's domain")
    project_domain_name: str = Field("Default", description="the project's domain")
    interface: Literal["public", "internal", "admin"] = Field(
        "internal",
        description="the identity endpoint used for validation comes from the service user's "
        "catalog: this interface (keystonemiddleware's default)",
    )
    region_name: str | None = Field(None, description="... in this region (unset: any)")
    service_token_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["service"],
        description="an `X-Service-Token` counts only with one of these roles (and then lets an "
        "expired user token through, as keystonemiddleware does); comma-separated",
    )
    service_token_roles_required: bool = Field(
        True, description="refuse a service token without one of those roles"
    )
    service_type: str = Field(
        "network",
        description="this service's type: application credentials with access rules are "
        "checked against rules for it",
    )
    token_cache_time: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="seconds a validation is reused (never beyond the token's expiry): a token "
        "revoked in Keystone stops working within this time",
    )
    token_cache_url: str = Field(
        "memory://",
        description="`memory://` (per process) or `redis://host:port/db` (shared by every "
        "worker; entries are signed): memcached_servers' counterpart",
    )
    token_cache_max_entries: int = Field(
        default=10_000, ge=1, description="validations kept per process"
    )
    http_connect_timeout: float = Field(
        default=5.0, gt=0, description="seconds to reach Keystone before answering 503"
    )
    http_request_max_retries: int = Field(
        default=3, ge=0, le=10, description="retries of a failed call to Keystone"
    )
    cafile: str | None = Field(None, description="CA bundle for an https Keystone")
    insecure: bool = Field(False, description="skip TLS verification (refused in production)")

    _split_roles = field_validator("service_token_roles", mode="before")(_comma_list)

    @field_validator("token_cache_url")
    @classmethod
    def _cache_url(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("token_cache_url: use memory:// or redis://host:port/db")
        return value

    def missing(self) -> list[str]:
        """Options a keystone deployment must set."""
        needed = ("auth_url", "username", "password", "project_name")
        return [name for name in needed if not getattr(self, name)]

    def authenticate_uri(self) -> str:
        return self.www_authenticate_uri or self.auth_url or ""


EVENT_RESOURCE_TYPES = (
    "network",
    "segment",
    "subnet",
    "network_segment_range",
    "agent",
    "segment_host_mapping",
)
EVENT_ACTIONS = ("create", "update", "delete")


class EventFilter(BaseModel):
    """Which events a sink receives: every listed condition must match (empty: any)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the sink's name")
    resource_types: list[Literal[EVENT_RESOURCE_TYPES]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="only these resource types"
    )
    actions: list[Literal[EVENT_ACTIONS]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="only these actions"
    )
    projects: list[str] = Field(default_factory=list, description="only these projects")

    def matches(self, resource_type: str, action: str, project_id: str | None) -> bool:
        return (
            (not self.resource_types or resource_type in self.resource_types)
            and (not self.actions or action in self.actions)
            and (not self.projects or project_id in self.projects)
        )


class WebhookSink(EventFilter):
    """``type = "webhook"``: each event POSTed as JSON, signed (README, "Change events")."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://", description="where events are POSTed")
    secrets: list[SecretStr] = Field(
        min_length=1,
        description="HMAC-SHA256 keys (16+ characters); each signs the event, so a new key "
        "can be added before receivers switch to it and the old one removed after",
    )
    timeout_seconds: float = Field(5.0, gt=0, le=60, description="connect and response timeout")
    allow_private: bool = Field(
        False,
        description="allow loopback, link-local (cloud metadata) and other non-routable "
        "targets, refused by default (no SSRF into the control plane)",
    )

    @field_validator("secrets")
    @classmethod
    def _long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(s.get_secret_value()) < 16 for s in value):
            raise ValueError("webhook secrets must be at least 16 characters")
        return value


class AmqpSink(EventFilter):
    """``type = "amqp"``: Neutron's notifications through oslo.messaging (extra ``events``)."""

    type: Literal["amqp"]
    transport_url: SecretStr = Field(
        SecretStr("rabbit://guest:guest@127.0.0.1:5672/"), description="oslo.messaging URL"
    )
    topic: str = Field("notifications", description="notification topic (queue `<topic>.info`)")
    publisher_id: str = Field("network.segmentd", description="the notifications' publisher_id")
    retry: int = Field(1, ge=0, le=10, description="reconnection attempts per send")


EventSink = Annotated[WebhookSink | AmqpSink, Field(discriminator="type")]


class Settings(BaseSettings):
    # ``SEGMENTD_KEYSTONE_AUTHTOKEN__AUTH_URL`` sets ``[keystone_authtoken] auth_url``.
    model_config = SettingsConfigDict(
        env_prefix="SEGMENTD_", extra="forbid", env_nested_delimiter="__"
    )

    # Each description is the README's "Settings" table (``segmentd.settings_doc``
    # renders it; a test fails when the README's copy differs).
    environment: Literal["development", "test", "production"] = Field(
        "development",
        description="`production` refuses `noauth` and weak password hashing",
    )
    database_url: str = Field(
        "sqlite:///./segmentd.db",
        description="SQLite file (WAL; relative to the working directory) or "
        "`postgresql+psycopg://user@host/db`",
    )
    public_url: str | None = Field(
        None,
        description="base URL the token catalog advertises; unset: the scheme, host and port "
        "each request reached. Set it behind a proxy (`serve` warns when it does not "
        "match the address it binds)",
    )
    # Neutron ml2 options, same syntax.
    network_vlan_ranges: str = Field(
        "physnet1:1000:2999,physnet2:1000:2999",
        description="physnets and their allocatable VLANs (`physnet3` alone: explicit IDs only)",
    )
    flat_networks: str = Field(
        "*", description="physnets allowed for flat segments (`*`: any known physnet)"
    )
    vni_ranges: str = Field("1:16777215", description="allocatable VXLAN VNIs")
    geneve_vni_ranges: str = Field("1:16777215", description="allocatable Geneve VNIs")
    gre_id_ranges: str = Field("1:4294967295", description="allocatable GRE keys")
    tenant_network_types: str = Field(
        "vxlan",
        description="types tried, in order, for networks created without provider attributes",
    )
    allocation_retries: int = Field(
        16, description="attempts to claim a free segmentation ID when others take it first"
    )
    global_physnet_mtu: int = Field(
        1500,
        ge=68,
        le=65535,
        description="MTU of the underlying physical networks (Neutron's option): flat and "
        "VLAN networks get it, tunnels it less their overhead",
    )
    path_mtu: int = Field(
        0,
        ge=0,
        le=65535,
        description="MTU of the tunnel underlay (ML2's `path_mtu`); 0: `global_physnet_mtu`",
    )
    physnet_mtus: str = Field(
        "",
        description="per-physnet MTUs, `physnet1:9000,physnet2:1500` (ML2's `physical_network_mtus`)",
    )
    max_dns_nameservers: int = Field(
        5, ge=0, le=64, description="DNS servers per subnet (Neutron's option; more: 400)"
    )
    max_subnet_host_routes: int = Field(
        20, ge=0, le=256, description="host routes per subnet (Neutron's option; more: 400)"
    )
    # Bounds (CWE-400).
    pagination_default_limit: int = Field(
        100, description="page size when none is given (capped by `pagination_max_limit`)"
    )
    pagination_max_limit: int = Field(
        1000,
        description="largest page served: a larger `limit` is clamped (as Neutron does), "
        "`limit=0` means this; a negative or non-integer `limit` is 400",
    )
    max_filter_values: int = Field(100, description="filter values per list query (more: 400)")
    max_sort_keys: int = Field(4, description="`sort_key`s per list query (more: 400)")
    max_fields: int = Field(50, description="`fields` per query (more: 400)")
    segment_range_detail_max: int = Field(
        4094,
        description="entries of a network segment range's `used`, `available` and "
        "`available_ranges` per response (the lowest ones); `used_count`, `available_count` "
        "stay exact. 4094 keeps every VLAN range complete",
    )
    auth_strategy: Literal["token", "noauth", "keystone"] = Field(
        "token",
        description="`token`: every `/v2.0` request needs an `X-Auth-Token` from the built-in "
        "identity service; `keystone`: a token of an external Keystone (`keystone_authtoken`; "
        "the built-in identity is off); `noauth` (development and tests only): the caller "
        "names its project and roles in `X-Project-Id` / `X-Roles`",
    )
    keystone_authtoken: KeystoneAuthtoken = Field(
        default_factory=KeystoneAuthtoken,
        description="the `[keystone_authtoken]` section, Neutron's option names (README: "
        '"Joining an existing cloud"); `SEGMENTD_KEYSTONE_AUTHTOKEN__<OPTION>` in the '
        "environment",
    )
    token_ttl_seconds: int = Field(
        3600, description="lifetime of a token from a password login (and `token issue`'s default)"
    )
    token_cache_seconds: float = Field(
        5.0,
        description="how long a validated token is trusted without a database read (0: never); "
        "a revocation or role change made through another process takes effect within it",
    )
    max_token_ttl_seconds: int = Field(
        400 * 86400, description="longest `segmentd token issue --ttl` (agent tokens)"
    )
    policy_file: str | None = Field(
        None, description="oslo.policy overrides (YAML or JSON) with Neutron's rule names"
    )
    region_name: str = Field("RegionOne", description="the region of the catalog's endpoints")
    password_time_cost: int = Field(
        3, description="argon2id passes (RFC 9106's second recommended option by default)"
    )
    password_memory_kib: int = Field(
        65536, description="argon2id memory (below 19456 is refused in production)"
    )
    password_parallelism: int = Field(4, description="argon2id lanes")
    password_hash_concurrency: int = Field(
        1,
        ge=1,
        le=64,
        description="password hashes computed at once per worker, always outside any "
        "transaction; more logins wait their turn",
    )
    # Agents and host mapping: keep (report interval + heartbeat_write_interval)
    # below agent_down_time.
    agent_down_time: int = Field(
        75, description="seconds without a heartbeat before an agent is reported dead"
    )
    agent_heartbeat_write_interval: int = Field(
        35,
        description="seconds: minimum age of the stored heartbeat before an unchanged report "
        "rewrites it (at most `agent_down_time` / 2)",
    )
    max_agents_per_report: int = Field(1000, description="agents per bulk report (more: 413)")
    max_bulk_create: int = Field(
        100,
        ge=1,
        le=1000,
        description="networks, subnets or segments per bulk create, created all or none "
        "in one transaction (more: 413)",
    )
    max_physnets_per_agent: int = Field(
        64,
        description="distinct physical networks one agent may report, all its mappings "
        "together (more: 400 `TooManyPhysicalNetworks`, nothing written); a bulk report "
        "writes up to `max_agents_per_report` x this many rows in one transaction",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="request and error logs (`serve --log-level` overrides it)"
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="`json` (one object per line) or `text` (`serve --log-format`)"
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="bearer token (16+ characters) scrapers send to `/metrics`; "
        "unset: loopback callers only",
    )
    readiness_cache_seconds: float = Field(
        1.0, description="how long a `/readyz` probe result is reused (per process)"
    )
    audit_denial_window_seconds: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="anonymous refused writes: the first per client address and route in the "
        "window is an audit event, the rest one event with their count",
    )
    max_request_body_bytes: int = Field(
        4 * 1024 * 1024,
        description="larger bodies answer 413 `RequestBodyTooLarge` before any parsing "
        "(Content-Length and streamed bytes)",
    )
    request_timeout_seconds: float = Field(
        30.0,
        description="deadline: 503 `RequestTimeout` + `Retry-After`, and the request's "
        "transaction is rolled back (0 disables)",
    )
    # Reading a request, before the app runs (``http_limits``).
    http_max_url_bytes: int = Field(
        16 * 1024, description="request target (path and query) in bytes (more: 414)"
    )
    http_max_header_bytes: int = Field(
        32 * 1024, description="header fields of a request in bytes (more: 431)"
    )
    http_max_header_count: int = Field(100, description="header fields of a request (more: 431)")
    http_header_timeout_seconds: float = Field(
        10.0, description="time a request's head may take to arrive (then 408 and close)"
    )
    http_body_timeout_seconds: float = Field(
        30.0, description="time a request's body may take to arrive (then 408 and close)"
    )
    http_max_connections: int = Field(
        1000,
        description="connections a worker serves at once (uvicorn's `limit_concurrency`; "
        "requests beyond it answer 503; idle keep-alive connections count)",
    )
    # Handlers mostly hold the GIL, so past a few threads they only fight over
    # it (16 clients listing on SQLite: 296 req/s on anyio's default 40
    # threads, 490 on 2).  PostgreSQL's round trips free the GIL, but each
    # thread must win it back: on loopback, 16 clients on one worker, 3
    # threads against 8 gave updates 400 req/s against 270-320 at two thirds
    # of the CPU per request, and GETs a p99 of 31 ms against 45-112.
    handler_threads: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="threads running handlers per worker; unset: 2 on SQLite, 3 on "
        "PostgreSQL (raise it for a distant database). On SQLite writes also queue for one "
        "slot of their own",
    )
    db_statement_timeout_ms: int = Field(
        10_000,
        description="PostgreSQL `statement_timeout` on every connection (a cancelled "
        "statement answers 503)",
    )
    sqlite_busy_timeout_ms: int = Field(
        10_000, description="SQLite `busy_timeout`: how long a writer queues for the lock"
    )
    # Rate limits: ``limits`` syntax, "N/second|minute|hour|day".
    ratelimit_enabled: bool = Field(True, description="rate limiting on or off")
    ratelimit_storage_url: str = Field(
        "memory://",
        description="counters per process; `redis://host:6379/0` shares them between "
        "workers and machines",
    )
    ratelimit_strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = Field(
        "moving-window",
        description="the `limits` library's strategies; with `memory://` the moving window "
        "is segmentd's own (same decisions, O(1) per hit, no timer threads)",
    )
    ratelimit_key_prefix: str = Field(
        "segmentd", description="namespace of the counters (several deployments on one Redis)"
    )
    ratelimit_fail_open: bool = Field(
        True,
        description="Redis unreachable: let requests through (logged, counted), or refuse "
        "them with 503 `RateLimiterUnavailable`",
    )
    ratelimit_read: str = Field("12000/minute", description="per principal (token's user): GET")
    ratelimit_write: str = Field("3000/minute", description="per principal: POST, PUT, DELETE")
    ratelimit_report: str = Field(
        "60000/minute",
        description="per principal: agent reports (agents usually share one credential: size "
        "it for the fleet)",
    )
    ratelimit_anonymous: str = Field(
        "600/minute",
        description="per client address: every request whose authentication fails "
        "(identity routes included)",
    )
    ratelimit_login_address: str = Field(
        "300/minute",
        description="per client address: every login attempt, right or wrong (each costs a "
        "memory-hard hash; the `openstack` CLI logs in once per command)",
    )
    ratelimit_login: str = Field(
        "10/minute",
        description="failed logins per user name and client address (per address, so nobody "
        "can lock the real user out from elsewhere); successful logins are not counted",
    )
    ratelimit_roles: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='per-role overrides, e.g. `{"service": {"report": "120000/minute"}}`; '
        "the most generous of the caller's roles wins",
    )
    # Quotas (Neutron's defaults); admins set a project's own with PUT /v2.0/quotas/{id}.
    quota_network: int = Field(
        100, ge=-1, description="networks per project unless set for it (-1: unlimited)"
    )
    quota_subnet: int = Field(
        100, ge=-1, description="subnets per project unless set for it (-1: unlimited)"
    )
    quota_segment: int = Field(
        100,
        ge=-1,
        description="segments on a project's networks unless set for it (-1: unlimited)",
    )
    # The web console (/ui/).
    ui_enabled: bool = Field(
        True,
        description="serve the web console under `/ui/` (logins of the built-in identity, or "
        'Keystone tokens with `auth_strategy = "keystone"`; README: Console)',
    )
    ui_session_idle_seconds: int = Field(
        1800,
        ge=60,
        le=86400,
        description="a console session unused this long is over (log in again)",
    )
    ui_session_absolute_seconds: int = Field(
        8 * 3600,
        ge=60,
        le=7 * 86400,
        description="a console session ends this long after its login, however busy",
    )
    ui_page_size: int = Field(
        25, ge=5, le=500, description="rows per page of the console's lists (Horizon shows 20)"
    )

    # Change events (README, "Change events").
    events_enabled: bool = Field(
        True,
        description="write a change event with every change (the outbox); `false`: none are "
        "written, so none are delivered or pulled",
    )
    event_sinks: list[EventSink] = Field(
        default_factory=list,
        description="where `segmentd events` delivers change events: `[[event_sinks]]` tables "
        '(README: "Change events"); none: events are only kept for `GET /v2.0/events`',
    )
    events_in_serve: bool = Field(
        False,
        description="also deliver from a thread of each `serve` worker (on SQLite only one "
        "of them delivers); otherwise run `segmentd events` beside it",
    )
    events_batch_size: int = Field(
        100, ge=1, le=10_000, description="events a delivery worker claims at once"
    )
    events_poll_seconds: float = Field(
        1.0, gt=0, le=60, description="a delivery worker's pause when nothing is due"
    )
    events_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="a claimed event is another worker's to retry after this long (a worker "
        "that died); keep it above the sinks' timeouts",
    )
    events_max_attempts: int = Field(
        12, ge=1, description="failed attempts before an event is dead (`events replay` revives)"
    )
    events_retry_base_seconds: float = Field(
        1.0, gt=0, description="first retry delay, doubled each attempt, with jitter"
    )
    events_retry_max_seconds: float = Field(600.0, gt=0, description="longest retry delay")
    events_retention_seconds: float = Field(
        7 * 86400.0,
        ge=0,
        description="delivered events are deleted this long after their delivery (the pull "
        "endpoint's window)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, environment, then the config file.
        path = os.environ.get("SEGMENTD_CONFIG_FILE", "segmentd.toml")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=Path(path))
        return (init_settings, env_settings, toml)

    @field_validator("physnet_mtus")
    @classmethod
    def _physnet_mtus(cls, value: str) -> str:
        for item in filter(None, (v.strip() for v in value.split(","))):
            name, _, mtu = item.rpartition(":")
            if not name.strip() or not mtu.strip().isdigit() or not 68 <= int(mtu) <= 65535:
                raise ValueError(f"physnet_mtus entry {item!r} is not physnet:MTU (68-65535)")
        return value

    @field_validator("tenant_network_types")
    @classmethod
    def _known_types(cls, value: str) -> str:
        for name in filter(None, (v.strip() for v in value.split(","))):
            if name not in NETWORK_TYPES:
                raise ValueError(f"unknown tenant network type {name!r}")
        return value

    @field_validator(
        "pagination_max_limit",
        "pagination_default_limit",
        "token_ttl_seconds",
        "max_token_ttl_seconds",
        "password_time_cost",
        "password_parallelism",
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @model_validator(mode="after")
    def _guards(self) -> Settings:
        if self.max_request_body_bytes < 1024 or self.request_timeout_seconds < 0:
            raise ValueError("max_request_body_bytes must be >= 1024, request_timeout_seconds >= 0")
        if self.sqlite_busy_timeout_ms < 0 or self.db_statement_timeout_ms < 0:
            raise ValueError("database timeouts must not be negative")
        http_bounds = (
            self.http_max_url_bytes,
            self.http_max_header_bytes,
            self.http_max_header_count,
            self.http_header_timeout_seconds,
            self.http_body_timeout_seconds,
            self.http_max_connections,
        )
        if min(http_bounds) <= 0:
            raise ValueError("http_* limits and timeouts must be positive")
        rates = [
            self.ratelimit_read,
            self.ratelimit_write,
            self.ratelimit_report,
            self.ratelimit_anonymous,
            self.ratelimit_login,
            self.ratelimit_login_address,
        ]
        for role, per_class in self.ratelimit_roles.items():
            unknown = set(per_class) - set(RATE_CLASSES)
            if unknown:
                raise ValueError(f"ratelimit_roles[{role!r}]: unknown class {sorted(unknown)[0]!r}")
            rates.extend(per_class.values())
        for rate in rates:
            if not RATE_RE.fullmatch(rate):
                raise ValueError(f"invalid rate {rate!r}: use N/second, N/minute, N/hour or N/day")
        return self

    @model_validator(mode="after")
    def _agent_timing(self) -> Settings:
        if self.max_agents_per_report < 1 or self.agent_down_time < 2:
            raise ValueError("max_agents_per_report and agent_down_time must be positive")
        if self.max_physnets_per_agent < 1:
            raise ValueError("max_physnets_per_agent must be positive")
        if not 0 <= self.agent_heartbeat_write_interval * 2 <= self.agent_down_time:
            raise ValueError("agent_heartbeat_write_interval must be at most agent_down_time / 2")
        return self

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        # Checked eagerly so a bad range fails at start-up, not on first use.
        self.ranges()
        if self.environment == "production" and self.auth_strategy == "noauth":
            raise ValueError("auth_strategy 'noauth' is refused in production")
        missing = self.keystone_authtoken.missing()
        if self.auth_strategy == "keystone" and missing:
            names = ", ".join(missing)
            raise ValueError(
                f"auth_strategy 'keystone' needs [keystone_authtoken] {names} "
                f"(or SEGMENTD_KEYSTONE_AUTHTOKEN__{missing[0].upper()}, ...)"
            )
        if self.environment == "production" and self.keystone_authtoken.insecure:
            raise ValueError(
                "keystone_authtoken.insecure (no TLS verification) is refused in production"
            )
        if self.environment == "production" and self.password_memory_kib < 19456:
            raise ValueError(
                "password_memory_kib below 19456 (OWASP minimum) is refused in production"
            )
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 16:
            raise ValueError("metrics_token must be at least 16 characters")
        sink_names = [sink.name for sink in self.event_sinks]
        if len(set(sink_names)) != len(sink_names):
            raise ValueError("event_sinks: each sink needs a name of its own")
        for sink in self.event_sinks:
            if (
                isinstance(sink, WebhookSink)
                and sink.timeout_seconds * 4 > self.events_lease_seconds
            ):
                raise ValueError(
                    f"event_sinks {sink.name}: events_lease_seconds must be at least 4 x "
                    "timeout_seconds (a claimed event must not be taken again mid-send)"
                )
            if not isinstance(sink, WebhookSink) or self.environment != "production":
                continue
            if not sink.url.startswith("https://") and not sink.allow_private:
                raise ValueError(f"event_sinks {sink.name}: webhooks need https in production")
        if self.password_memory_kib < 8 * self.password_parallelism:
            raise ValueError("password_memory_kib must be at least 8 x password_parallelism")
        return self

    # Derived, typed views -------------------------------------------------------

    def ranges(self) -> dict[str, list[IdRange]]:
        """Configured allocation ranges per network type, VLAN first by physnet."""
        vlan, _ = parse_vlan_ranges(self.network_vlan_ranges)
        return {
            "vlan": [r for per_net in vlan.values() for r in per_net],
            "vxlan": parse_tunnel_ranges("vxlan", self.vni_ranges),
            "geneve": parse_tunnel_ranges("geneve", self.geneve_vni_ranges),
            "gre": parse_tunnel_ranges("gre", self.gre_id_ranges),
        }

    def default_ranges(self) -> list[IdRange]:
        """Every configured range, as the ``default`` network segment ranges."""
        return [r for per_type in self.ranges().values() for r in per_type]

    def vlan_physnets(self) -> list[str]:
        return parse_vlan_ranges(self.network_vlan_ranges)[1]

    def flat_physnets(self) -> list[str] | None:
        """Physnets allowed for flat networks; ``None`` means any known one."""
        names = [v.strip() for v in self.flat_networks.split(",") if v.strip()]
        return None if "*" in names else names

    def known_physnets(self) -> set[str]:
        return set(self.vlan_physnets()) | set(self.flat_physnets() or [])

    def physnet_mtu_map(self) -> dict[str, int]:
        """``physnet_mtus`` as a mapping (validated at load)."""
        out = {}
        for item in filter(None, (v.strip() for v in self.physnet_mtus.split(","))):
            name, _, mtu = item.rpartition(":")
            out[name.strip()] = int(mtu)
        return out

    def default_tenant_type(self) -> str:
        return next(v.strip() for v in self.tenant_network_types.split(",") if v.strip())

    def quota_defaults(self) -> dict[str, int]:
        return {
            "network": self.quota_network,
            "subnet": self.quota_subnet,
            "segment": self.quota_segment,
        }

    def public_base(self, served: str) -> str:
        """The URL the token catalog advertises: ``public_url``, else the one served.

        ``served`` is the scheme, host and port the request reached, so a
        server on any port advertises itself unless told otherwise (a proxy
        in front sets ``public_url``).
        """
        return (self.public_url or served).rstrip("/")

    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
