"""The Neutron v2.0 wire format: request models and response views.

Shape and bounds are checked here (tier 1); per-type rules live in the type
drivers and cross-entity rules in services.  Request models forbid unknown
attributes, and name read-only ones explicitly so the error says why.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal, Protocol, Self
from urllib.parse import parse_qsl, urlencode

from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from starlette.datastructures import URL

from segmentd import errors
from segmentd.db.base import Page
from segmentd.db.models import (
    CIDR_LEN,
    DESCRIPTION_LEN,
    IP_LEN,
    NAME_LEN,
    PHYSNET_LEN,
    TAG_LEN,
    Network,
    NetworkSegmentRange,
    Segment,
    Subnet,
)
from segmentd.services.segment_ranges import Usage
from segmentd.services.segments import SegmentRecord
from segmentd.services.standard import MAX_TAGS

NETWORK_TYPES = ("flat", "vlan", "vxlan", "geneve", "gre", "local")


def _supported_type(value: Any) -> Any:
    """Neutron's type manager answers an unknown type with ``InvalidInput``
    (neutron/plugins/ml2/managers.py ``_validate_segment``); clients match on
    that type, so it is raised as the domain error, not as a schema error."""
    if isinstance(value, str) and value not in NETWORK_TYPES:
        shown = value[:64]
        raise errors.InvalidInput(error_message=f"network_type value '{shown}' not supported")
    return value


NetworkType = Annotated[
    Literal["flat", "vlan", "vxlan", "geneve", "gre", "local"], BeforeValidator(_supported_type)
]
# No NUL characters: PostgreSQL text cannot hold them, SQLite would.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, Field(max_length=NAME_LEN, pattern=NO_NUL)]
Description = Annotated[str, Field(max_length=DESCRIPTION_LEN, pattern=NO_NUL)]
PhysicalNetwork = Annotated[
    str, Field(min_length=1, max_length=PHYSNET_LEN, pattern=r"^[A-Za-z0-9_.\-]+$")
]
_DIGITS = re.compile(r"[0-9]{1,10}")


def _decimal_string(value: Any) -> Any:
    """The one string form an integer may take: plain decimal digits.

    The ``openstack`` CLI sends ``--provider-segment 101`` as the string
    ``"101"`` (Neutron converts it), so refusing strings would break it; but
    nothing looser passes: not ``true``, ``150.0``, ``" 152"`` or ``"+7"``.
    """
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return value


# An integer as Neutron's clients send it (see ``_decimal_string``).
WireInt = Annotated[int, BeforeValidator(_decimal_string)]
# Ranges per network type are the type drivers' (InvalidInput, as ML2's);
# the schema only keeps values inside the columns' integer range.
SegmentationId = Annotated[WireInt, Field(ge=-2147483648, le=4294967295)]
# The ceiling is the network's computed maximum (InvalidInput "Requested MTU
# is too big", as ML2); the floor is IPv4's minimum, below which no subnet fits.
Mtu = Annotated[WireInt, Field(ge=68, le=2147483647)]
Tag = Annotated[str, Field(min_length=1, max_length=TAG_LEN, pattern=r"^[^,\x00]+$")]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
ProjectId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_\-]+$")]

# Views hand timestamps over as datetimes: ``wire.JSONResponse`` writes them in
# Neutron's format, 2026-11-26T13:05:00Z, several times faster than strftime.


# Responses --------------------------------------------------------------------
# Response bodies are built as plain dicts (``*_view``) and written by orjson;
# these models describe them for the OpenAPI document (and so for the fuzz
# test's response-conformance check), and each resource's ``fields=`` names
# come from them: one definition.


def _nothing_required(schema: dict[str, Any]) -> None:
    # ``fields=`` and per-attribute policy may leave any attribute out.
    schema.pop("required", None)


class View(BaseModel):
    # extra="forbid": the document says "additionalProperties: false", so the
    # fuzz test's conformance check also catches a view growing a stray key.
    model_config = ConfigDict(
        populate_by_name=True, extra="forbid", json_schema_extra=_nothing_required
    )


def field_names(model: type[BaseModel]) -> frozenset[str]:
    """The wire names of a view's attributes: what ``fields=`` may name."""
    return frozenset(f.alias or name for name, f in model.model_fields.items())


class Link(View):
    rel: str
    href: str


Links = list[Link] | None


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"'{value}' is not a valid UUID") from None


def _reject(data: Any, names: Iterable[str], template: str) -> Any:
    if isinstance(data, dict):
        for name in names:
            if name in data:
                raise ValueError(template % name)
    return data


class Strict(BaseModel):
    """A request body: unknown attributes refused, and no coercion (strict
    mode): integers only from JSON integers, booleans only from JSON
    booleans, strings only from strings.  ``true`` is not VLAN 1, ``150.0``
    is not 150, and ``"yes"`` is not ``true``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False, strict=True)


# Hard ceiling of a bulk create's schema; the configured max_bulk_create is lower.
BULK_HARD_LIMIT = 1000


def _one_or_many(one: Any, many: Any) -> None:
    """A create body carries one resource or a non-empty list, never both."""
    if (one is None) == (many is None):
        raise ValueError("Resource body required")


class CreateAttrs(Strict):
    """Attributes of a POST: those in ``READ_ONLY`` are refused, saying why."""

    READ_ONLY: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _read_only(cls, data: Any) -> Any:
        return _reject(data, cls.READ_ONLY, "Attribute '%s' not allowed in POST")


class OwnedCreateAttrs(CreateAttrs):
    """POST attributes of a project-owned resource: ``project_id`` or its old name."""

    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None

    @model_validator(mode="after")
    def _one_owner(self) -> Self:
        if self.project_id and self.tenant_id and self.project_id != self.tenant_id:
            raise ValueError("project_id and tenant_id do not match")
        return self

    @property
    def owner(self) -> str | None:
        return self.project_id or self.tenant_id


class UpdateAttrs(Strict):
    """Attributes of a PUT: ``IMMUTABLE`` and ``READ_ONLY`` ones are refused, saying why."""

    IMMUTABLE: ClassVar[tuple[str, ...]] = ()
    READ_ONLY: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _read_only(cls, data: Any) -> Any:
        _reject(data, cls.IMMUTABLE, "Cannot update read-only attribute %s")
        return _reject(data, cls.READ_ONLY, "Attribute '%s' not allowed in PUT")


# Segments ---------------------------------------------------------------------

SEGMENT_READ_ONLY = ("id", "created_at", "updated_at", "revision_number", "segment_index", "hosts")
SEGMENT_IMMUTABLE = ("network_id", "network_type", "physical_network", "segmentation_id")


class SegmentCreate(CreateAttrs):
    READ_ONLY = SEGMENT_READ_ONLY

    network_id: str
    network_type: NetworkType
    physical_network: PhysicalNetwork | None = None
    segmentation_id: SegmentationId | None = None
    name: Name | None = None
    description: Description = ""
    tags: Tags | None = None

    _check_uuid = field_validator("network_id")(classmethod(lambda cls, v: _uuid(v)))


class SegmentUpdate(UpdateAttrs):
    IMMUTABLE = SEGMENT_IMMUTABLE
    READ_ONLY = SEGMENT_READ_ONLY

    name: Name | None = None
    description: Description | None = None
    tags: Tags | None = None


class SegmentCreateBody(Strict):
    """``{"segment": {...}}``, or a bulk create ``{"segments": [...]}`` (all or nothing)."""

    segment: SegmentCreate | None = None
    segments: (
        Annotated[list[SegmentCreate], Field(min_length=1, max_length=BULK_HARD_LIMIT)] | None
    ) = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        _one_or_many(self.segment, self.segments)
        return self

    @property
    def items(self) -> list[SegmentCreate]:
        return self.segments if self.segments is not None else [self.segment]  # type: ignore[list-item]

    @property
    def bulk(self) -> bool:
        return self.segments is not None


class SegmentUpdateBody(Strict):
    segment: SegmentUpdate


class SegmentView(View):
    id: str
    network_id: str
    name: str | None
    description: str
    network_type: NetworkType
    physical_network: str | None
    segmentation_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    revision_number: int
    tags: list[str]


class SegmentOne(View):
    segment: SegmentView


class SegmentBulk(View):
    segments: list[SegmentView]


class SegmentMany(View):
    segments: list[SegmentView]
    segments_links: Links = None


SEGMENT_FIELDS = field_names(SegmentView)


def segment_view(segment: Segment | SegmentRecord) -> dict[str, Any]:
    return {
        "id": segment.id,
        "network_id": segment.network_id,
        "name": segment.name,
        "description": segment.description,
        "network_type": segment.network_type,
        "physical_network": segment.physical_network,
        "segmentation_id": segment.segmentation_id,
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
        "revision_number": segment.revision_number,
        "tags": segment.tag_names,
    }


# Networks ---------------------------------------------------------------------

NETWORK_READ_ONLY = (
    "id",
    "created_at",
    "updated_at",
    "revision_number",
    "status",
    "subnets",
    "availability_zones",
    "l2_adjacency",
    "ipv4_address_scope",
    "ipv6_address_scope",
)
PROVIDER_ATTRS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


class ProviderSegment(Strict):
    network_type: NetworkType = Field(alias="provider:network_type")
    physical_network: PhysicalNetwork | None = Field(None, alias="provider:physical_network")
    segmentation_id: SegmentationId | None = Field(None, alias="provider:segmentation_id")


class NetworkCreate(OwnedCreateAttrs):
    READ_ONLY = NETWORK_READ_ONLY

    name: Name = ""
    description: Description = ""
    admin_state_up: bool = True
    shared: bool = False
    router_external: bool = Field(False, alias="router:external")
    mtu: Mtu | None = None
    tags: Tags | None = None
    availability_zone_hints: Annotated[list[str], Field(max_length=0)] = []
    network_type: NetworkType | None = Field(None, alias="provider:network_type")
    physical_network: PhysicalNetwork | None = Field(None, alias="provider:physical_network")
    segmentation_id: SegmentationId | None = Field(None, alias="provider:segmentation_id")
    segments: Annotated[list[ProviderSegment], Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> NetworkCreate:
        provider = (self.network_type, self.physical_network, self.segmentation_id)
        if self.segments is not None and any(v is not None for v in provider):
            # Raised as the domain error (not a ValueError, which validation
            # would wrap): clients match on Neutron's type.
            raise errors.SegmentsSetInConjunctionWithProviders()
        if self.network_type is None and any(v is not None for v in provider):
            raise ValueError("provider:network_type required with other provider attributes")
        if self.segments is not None:
            keys = [(s.network_type, s.physical_network, s.segmentation_id) for s in self.segments]
            if len(set(keys)) != len(keys):
                raise errors.SegmentsContainDuplicateEntry()
        return self


class NetworkUpdate(UpdateAttrs):
    IMMUTABLE = ("segments",)
    READ_ONLY = (*NETWORK_READ_ONLY, "project_id", "tenant_id")

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = None
    shared: bool | None = None
    router_external: bool | None = Field(None, alias="router:external")
    mtu: Mtu | None = None
    tags: Tags | None = None
    network_type: NetworkType | None = Field(None, alias="provider:network_type")
    physical_network: PhysicalNetwork | None = Field(None, alias="provider:physical_network")
    segmentation_id: SegmentationId | None = Field(None, alias="provider:segmentation_id")


class NetworkCreateBody(Strict):
    """``{"network": {...}}``, or a bulk create ``{"networks": [...]}`` (all or nothing)."""

    network: NetworkCreate | None = None
    networks: (
        Annotated[list[NetworkCreate], Field(min_length=1, max_length=BULK_HARD_LIMIT)] | None
    ) = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        _one_or_many(self.network, self.networks)
        return self

    @property
    def items(self) -> list[NetworkCreate]:
        return self.networks if self.networks is not None else [self.network]  # type: ignore[list-item]

    @property
    def bulk(self) -> bool:
        return self.networks is not None


class NetworkUpdateBody(Strict):
    network: NetworkUpdate


class ProviderView(View):
    network_type: str | None = Field(alias="provider:network_type")
    physical_network: str | None = Field(alias="provider:physical_network")
    segmentation_id: int | None = Field(alias="provider:segmentation_id")


class NetworkView(ProviderView):
    id: str
    name: str
    description: str
    project_id: str
    tenant_id: str
    admin_state_up: bool
    status: str
    shared: bool
    mtu: int | None
    subnets: list[str]
    availability_zone_hints: list[str]
    availability_zones: list[str]
    router_external: bool = Field(alias="router:external")
    l2_adjacency: bool
    ipv4_address_scope: str | None
    ipv6_address_scope: str | None
    tags: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    revision_number: int
    segments: list[ProviderView]


class NetworkOne(View):
    network: NetworkView


class NetworkBulk(View):
    networks: list[NetworkView]


class NetworkMany(View):
    networks: list[NetworkView]
    networks_links: Links = None


NETWORK_FIELDS = field_names(NetworkView)


def _provider(segment: Segment | None) -> dict[str, Any]:
    return {
        "provider:network_type": segment.network_type if segment else None,
        "provider:physical_network": segment.physical_network if segment else None,
        "provider:segmentation_id": segment.segmentation_id if segment else None,
    }


def network_view(network: Network, show_provider: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": network.id,
        "name": network.name,
        "description": network.description,
        "project_id": network.project_id,
        "tenant_id": network.project_id,
        "admin_state_up": network.admin_state_up,
        "status": network.status,
        "shared": network.shared,
        "mtu": network.mtu,
        "subnets": [s.id for s in network.subnets],
        "availability_zone_hints": [],
        "availability_zones": [],
        "router:external": network.router_external,
        # neutron/services/segments/plugin.py: not adjacent once its subnets
        # sit on segments (all or none do); no address scopes without subnet pools.
        "l2_adjacency": not network.subnets or network.subnets[0].segment_id is None,
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "tags": sorted(t.tag for t in network.tags),
        "created_at": network.created_at,
        "updated_at": network.updated_at,
        "revision_number": network.revision_number,
    }
    if show_provider:
        # Neutron shows provider:* for a single segment and a list otherwise.
        segments = network.segments
        if len(segments) > 1:
            view["segments"] = [_provider(s) for s in segments]
        else:
            view.update(_provider(segments[0] if segments else None))
    return view


# Subnets ----------------------------------------------------------------------
# Shape only: address syntax and the rules between addresses live in
# services.subnet_rules, one home per rule.

SUBNET_READ_ONLY = ("id", "created_at", "updated_at", "revision_number")
SUBNET_IMMUTABLE = (
    "network_id",
    "cidr",
    "ip_version",
    "project_id",
    "tenant_id",
    "ipv6_ra_mode",
    "ipv6_address_mode",
)
MAX_ALLOCATION_POOLS = 64

Address = Annotated[str, Field(min_length=1, max_length=IP_LEN)]


class AllocationPool(Strict):
    start: Address
    end: Address


AllocationPools = Annotated[list[AllocationPool], Field(max_length=MAX_ALLOCATION_POOLS)]
# Hard bounds on the lists; the configured (smaller) limits are the service's.
MAX_SUBNET_LIST = 256


class HostRoute(Strict):
    destination: Annotated[str, Field(min_length=1, max_length=CIDR_LEN)]
    nexthop: Address


DnsNameservers = Annotated[list[Address], Field(max_length=MAX_SUBNET_LIST)]
HostRoutes = Annotated[list[HostRoute], Field(max_length=MAX_SUBNET_LIST)]
ServiceType = Annotated[str, Field(min_length=1, max_length=255, pattern=NO_NUL)]
ServiceTypes = Annotated[list[ServiceType], Field(max_length=MAX_SUBNET_LIST)]
Ipv6Mode = Literal["dhcpv6-stateful", "dhcpv6-stateless", "slaac"]


class SubnetCreate(OwnedCreateAttrs):
    READ_ONLY = SUBNET_READ_ONLY

    network_id: str
    cidr: Annotated[str, Field(min_length=1, max_length=CIDR_LEN)]
    ip_version: Literal[4, 6]
    name: Name = ""
    description: Description = ""
    gateway_ip: Address | None = None
    allocation_pools: AllocationPools | None = None
    enable_dhcp: bool = True
    segment_id: str | None = None
    tags: Tags | None = None
    # null means empty, as Neutron's convert_none_to_empty_list
    dns_nameservers: DnsNameservers | None = None
    host_routes: HostRoutes | None = None
    service_types: ServiceTypes | None = None
    ipv6_ra_mode: Ipv6Mode | None = None
    ipv6_address_mode: Ipv6Mode | None = None
    subnetpool_id: None = None

    _check_network = field_validator("network_id")(classmethod(lambda cls, v: _uuid(v)))

    @field_validator("segment_id")
    @classmethod
    def _check_segment(cls, value: str | None) -> str | None:
        return None if value is None else _uuid(value)


class SubnetUpdate(UpdateAttrs):
    IMMUTABLE = SUBNET_IMMUTABLE
    READ_ONLY = SUBNET_READ_ONLY

    name: Name | None = None
    description: Description | None = None
    gateway_ip: Address | None = None
    allocation_pools: AllocationPools = []
    enable_dhcp: bool | None = None
    segment_id: str | None = None
    tags: Tags | None = None
    dns_nameservers: DnsNameservers | None = None
    host_routes: HostRoutes | None = None
    service_types: ServiceTypes | None = None

    @field_validator("segment_id")
    @classmethod
    def _check_segment(cls, value: str | None) -> str | None:
        return None if value is None else _uuid(value)


class SubnetCreateBody(Strict):
    """``{"subnet": {...}}``, or a bulk create ``{"subnets": [...]}`` (all or nothing)."""

    subnet: SubnetCreate | None = None
    subnets: (
        Annotated[list[SubnetCreate], Field(min_length=1, max_length=BULK_HARD_LIMIT)] | None
    ) = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        _one_or_many(self.subnet, self.subnets)
        return self

    @property
    def items(self) -> list[SubnetCreate]:
        return self.subnets if self.subnets is not None else [self.subnet]  # type: ignore[list-item]

    @property
    def bulk(self) -> bool:
        return self.subnets is not None


class SubnetUpdateBody(Strict):
    subnet: SubnetUpdate


class SubnetView(View):
    id: str
    name: str
    description: str
    network_id: str
    segment_id: str | None
    project_id: str
    tenant_id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    allocation_pools: list[AllocationPool]
    enable_dhcp: bool
    dns_nameservers: list[str]
    host_routes: list[HostRoute]
    ipv6_ra_mode: str | None
    ipv6_address_mode: str | None
    subnetpool_id: str | None
    service_types: list[str]
    router_external: bool = Field(alias="router:external")
    tags: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    revision_number: int


class SubnetOne(View):
    subnet: SubnetView


class SubnetBulk(View):
    subnets: list[SubnetView]


class SubnetMany(View):
    subnets: list[SubnetView]
    subnets_links: Links = None


SUBNET_FIELDS = field_names(SubnetView)


def pool_views(subnet: Subnet) -> list[dict[str, str]]:
    pools = sorted(subnet.allocation_pools, key=lambda p: ipaddress.ip_address(p.first_ip))
    return [{"start": p.first_ip, "end": p.last_ip} for p in pools]


def subnet_view(subnet: Subnet, show_segment: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": subnet.id,
        "name": subnet.name,
        "description": subnet.description,
        "network_id": subnet.network_id,
        "project_id": subnet.project_id,
        "tenant_id": subnet.project_id,
        "cidr": subnet.cidr,
        "ip_version": subnet.ip_version,
        "gateway_ip": subnet.gateway_ip,
        "allocation_pools": pool_views(subnet),
        "enable_dhcp": subnet.enable_dhcp,
        "dns_nameservers": [d.address for d in subnet.dns_nameservers],
        "host_routes": [
            {"destination": r.destination, "nexthop": r.nexthop}
            for r in sorted(subnet.host_routes, key=lambda r: (r.destination, r.nexthop))
        ],
        "ipv6_ra_mode": subnet.ipv6_ra_mode,
        "ipv6_address_mode": subnet.ipv6_address_mode,
        "subnetpool_id": None,
        "service_types": sorted(t.service_type for t in subnet.service_types),
        "router:external": subnet.network.router_external,
        "tags": sorted(t.tag for t in subnet.tags),
        "created_at": subnet.created_at,
        "updated_at": subnet.updated_at,
        "revision_number": subnet.revision_number,
    }
    if show_segment:
        # get_subnet:segment_id is admin-only in Neutron's defaults.
        view["segment_id"] = subnet.segment_id
    return view


# Envelopes --------------------------------------------------------------------


def project(view: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return view
    return {k: view[k] for k in fields if k in view}


def page_links(
    url: URL, collection: str, page: Page, marker_given: bool, reverse: bool
) -> list[dict[str, str]]:
    """Neutron's ``<collection>_links``: next/previous hrefs carrying every other parameter."""
    items = page.items
    if not items:
        return []
    query = parse_qsl(url.query, keep_blank_values=True)
    base = [(k, v) for k, v in query if k not in ("marker", "page_reverse")]

    def href(marker: str, backwards: bool) -> str:
        params = [*base, ("marker", marker)] + ([("page_reverse", "True")] if backwards else [])
        return str(url.replace(query=urlencode(params)))

    more_after = page.has_more if not reverse else marker_given
    more_before = marker_given if not reverse else page.has_more
    links = []
    if more_after:
        links.append({"rel": "next", "href": href(items[-1].id, False)})
    if more_before:
        links.append({"rel": "previous", "href": href(items[0].id, True)})
    return links


class PageQuery(Protocol):
    @property
    def marker(self) -> str | None: ...

    @property
    def reverse(self) -> bool: ...


def collection(
    url: URL,
    name: str,
    views: list[dict[str, Any]],
    page: Page,
    query: PageQuery,
    limit_given: bool,
) -> dict[str, Any]:
    """``{name: views}``, with ``<name>_links`` when paging was asked for or goes on."""
    body: dict[str, Any] = {name: views}
    links = page_links(url, name, page, query.marker is not None, query.reverse)
    if links or limit_given:
        body[f"{name}_links"] = links
    return body


# Network segment ranges -----------------------------------------------------------

RangeNetworkType = Literal["vlan", "vxlan", "geneve", "gre"]
RangeBound = Annotated[WireInt, Field(ge=1, le=4294967295)]
RANGE_COMPUTED = ("used", "used_count", "available", "available_count", "available_ranges")
RANGE_READ_ONLY = ("id", "default", *RANGE_COMPUTED, "created_at", "updated_at", "revision_number")
RANGE_IMMUTABLE = ("network_type", "physical_network", "shared", "project_id", "tenant_id")


class RangeCreate(OwnedCreateAttrs):
    READ_ONLY = RANGE_READ_ONLY

    name: Name = ""
    description: Description = ""
    shared: bool = True
    network_type: RangeNetworkType
    physical_network: PhysicalNetwork | None = None
    minimum: RangeBound
    maximum: RangeBound
    tags: Tags | None = None


class RangeUpdate(UpdateAttrs):
    IMMUTABLE = RANGE_IMMUTABLE
    READ_ONLY = RANGE_READ_ONLY

    name: Name | None = None
    description: Description | None = None
    minimum: RangeBound | None = None
    maximum: RangeBound | None = None
    tags: Tags | None = None


class RangeCreateBody(Strict):
    network_segment_range: RangeCreate


class RangeUpdateBody(Strict):
    network_segment_range: RangeUpdate


class RangeView(View):
    id: str
    name: str
    description: str
    default: bool
    shared: bool
    project_id: str | None
    network_type: RangeNetworkType
    physical_network: str | None
    minimum: int
    maximum: int
    used: dict[str, str | None]
    used_count: int
    available: list[int]
    available_count: int
    available_ranges: list[list[int]]
    tags: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    revision_number: int


class RangeOne(View):
    network_segment_range: RangeView


class RangeMany(View):
    network_segment_ranges: list[RangeView]
    network_segment_ranges_links: Links = None


RANGE_FIELDS = field_names(RangeView)


def range_view(row: NetworkSegmentRange, usage: Usage | None) -> dict[str, Any]:
    """``usage`` None: the caller's ``fields`` asked for none of the computed attributes."""
    view = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "default": row.default,
        "shared": row.shared,
        "project_id": row.project_id,
        "network_type": row.network_type,
        "physical_network": row.physical_network,
        "minimum": row.minimum,
        "maximum": row.maximum,
        "tags": sorted(t.tag for t in row.tags),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "revision_number": row.revision_number,
    }
    if usage is not None:
        view.update(
            used={str(k): v for k, v in usage.used.items()},
            used_count=usage.used_count,
            available=usage.available,
            available_count=usage.available_count,
            available_ranges=[list(run) for run in usage.available_ranges],
        )
    return view


# Tags (the sub-resource) -----------------------------------------------------------


# A tag in a path (``PUT .../tags/{tag}``): the same rule as in a body.
TagName = Annotated[str, Path(min_length=1, max_length=TAG_LEN, pattern=r"^[^,\x00/]+$")]


class TagsBody(Strict):
    tags: Tags


class TagsView(View):
    tags: list[str]


# Host mapping and discovery ------------------------------------------------------


class HostView(View):
    host: str


class HostMany(View):
    hosts: list[HostView]
    hosts_links: Links = None


class MappedHostMany(View):
    segment_host_mappings: list[HostView]
    segment_host_mappings_links: Links = None


class Version(View):
    id: str
    status: str
    links: list[Link]


class Versions(View):
    versions: list[Version]


class ResourceLink(View):
    name: str
    collection: str
    links: list[Link]


class Resources(View):
    resources: list[ResourceLink]


class Extension(View):
    alias: str
    name: str
    description: str
    updated: str
    links: list[Link]


class Extensions(View):
    extensions: list[Extension]


class ExtensionOne(View):
    extension: Extension


class Health(View):
    status: str
