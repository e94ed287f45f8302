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
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

NETWORK_TYPES = ("flat", "vlan", "vxlan", "geneve", "gre", "local")
TUNNEL_ID_LIMITS = {"vxlan": (1, 2**24 - 1), "geneve": (1, 2**24 - 1), "gre": (1, 2**32 - 1)}
VLAN_ID_LIMITS = (1, 4094)
PHYSNET_MAX_LEN = 64
# Classes of request with their own rate limit (``ratelimit_<class>``).
RATE_CLASSES = ("read", "write", "report", "anonymous", "login")
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTD_", extra="forbid")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./segmentd.db"
    public_url: str | None = None
    # Neutron ml2 options, same syntax.
    network_vlan_ranges: str = "physnet1:1000:2999,physnet2:1000:2999"
    flat_networks: str = "*"
    vni_ranges: str = "1:16777215"
    geneve_vni_ranges: str = "1:16777215"
    gre_id_ranges: str = "1:4294967295"
    tenant_network_types: str = "vxlan"
    # Bounds (CWE-400).
    pagination_default_limit: int = 100
    pagination_max_limit: int = 1000
    max_filter_values: int = 100
    max_sort_keys: int = 4
    max_fields: int = 50
    # Entries of a range's ``used``, ``available`` (integers, as openstackclient
    # needs) and ``available_ranges`` per response; counts stay exact.  4094
    # keeps every VLAN range complete, as the incumbent shows it.
    segment_range_detail_max: int = 4094
    db_statement_timeout_ms: int = 10_000
    allocation_retries: int = 16
    # "token": every /v2.0 request needs an X-Auth-Token issued by the
    # built-in identity service.  "noauth" (development and tests only): no
    # token, the caller names its project and roles in headers.
    auth_strategy: Literal["token", "noauth"] = "token"
    token_ttl_seconds: int = 3600
    # Seconds a validated token is trusted without a database read (0: never).
    # A revocation or role change made through another process takes effect
    # within this time; through the same process, at once.
    token_cache_seconds: float = 5.0
    max_token_ttl_seconds: int = 400 * 86400
    # oslo.policy overrides (YAML or JSON), Neutron's rule names.
    policy_file: str | None = None
    region_name: str = "RegionOne"
    # argon2id cost (RFC 9106 second recommended option by default).
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    password_parallelism: int = 4
    # Agents and host mapping.  An agent is alive while its last heartbeat is
    # younger than agent_down_time.  An unchanged report only rewrites the
    # heartbeat once the stored one is heartbeat_write_interval old, so keep
    # (agent report interval + heartbeat_write_interval) < agent_down_time.
    agent_down_time: int = 75
    agent_heartbeat_write_interval: int = 35
    max_agents_per_report: int = 1000
    # Operations.  Logs: level and format (one JSON object per line, or text).
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["json", "text"] = "json"
    # /metrics: with a token, scrapers send "Authorization: Bearer <token>";
    # without one, only loopback callers may scrape.
    metrics_token: SecretStr | None = None
    # /readyz answers from a probe at most this old (one probe per process).
    readiness_cache_seconds: float = 1.0
    # Request guards (CWE-400).  Bodies larger than max_request_body_bytes are
    # refused with 413 before parsing.  A request still running after
    # request_timeout_seconds is answered 503 and anything it would have
    # committed is rolled back (0 disables the deadline).
    max_request_body_bytes: int = 4 * 1024 * 1024
    request_timeout_seconds: float = 30.0
    # Threads that run handlers, per worker.  Handlers mostly hold the GIL,
    # so past a few threads they only fight over it (16 clients listing on
    # SQLite: 296 req/s on anyio's default 40 threads, 490 on 2).  Unset: 2
    # on SQLite, 8 on PostgreSQL, whose round trips leave the GIL free (raise
    # it when the database is far away).  On SQLite, writes also wait for a
    # slot of their own, one, as SQLite has one writer.
    handler_threads: int | None = Field(default=None, ge=1, le=1000)
    sqlite_busy_timeout_ms: int = 10_000
    # Rate limits (``limits`` syntax: "N/second|minute|hour|day"), per
    # principal and class of request; unauthenticated requests count per
    # client address; failed logins count per user name.  Memory storage is
    # per process; ``redis://host:port/db`` shares counters between workers.
    ratelimit_enabled: bool = True
    ratelimit_storage_url: str = "memory://"
    ratelimit_strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = (
        "moving-window"
    )
    ratelimit_key_prefix: str = "segmentd"
    ratelimit_fail_open: bool = True
    ratelimit_read: str = "12000/minute"
    ratelimit_write: str = "3000/minute"
    ratelimit_report: str = "60000/minute"
    ratelimit_anonymous: str = "600/minute"
    ratelimit_login: str = "10/minute"
    # Per-role overrides, e.g. {"service": {"report": "120000/minute"}}: a
    # caller gets the most generous limit among its roles' overrides.
    ratelimit_roles: dict[str, dict[str, str]] = {}

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
        rates = [
            self.ratelimit_read,
            self.ratelimit_write,
            self.ratelimit_report,
            self.ratelimit_anonymous,
            self.ratelimit_login,
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
        if not 0 <= self.agent_heartbeat_write_interval * 2 <= self.agent_down_time:
            raise ValueError("agent_heartbeat_write_interval must be at most agent_down_time / 2")
        return self

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        # Checked eagerly so a bad range fails at start-up, not on first use.
        self.ranges()
        if self.environment == "production" and self.auth_strategy == "noauth":
            raise ValueError("auth_strategy 'noauth' is refused in production")
        if self.environment == "production" and self.password_memory_kib < 19456:
            raise ValueError(
                "password_memory_kib below 19456 (OWASP minimum) is refused in production"
            )
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 16:
            raise ValueError("metrics_token must be at least 16 characters")
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

    def default_tenant_type(self) -> str:
        return next(v.strip() for v in self.tenant_network_types.split(",") if v.strip())

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
