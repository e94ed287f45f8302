"""Tables.  Invariants the database can enforce live here, not in Python."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from segmentd.db.base import Base, UtcDateTime, utcnow

NAME_LEN = 255
DESCRIPTION_LEN = 255
PHYSNET_LEN = 64
TAG_LEN = 255


def new_id() -> str:
    return str(uuid.uuid4())


class StandardAttrs:
    """Neutron's standard attributes: description, timestamps, revision."""

    description: Mapped[str] = mapped_column(String(DESCRIPTION_LEN), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(BigInteger, default=1)


class Network(StandardAttrs, Base):
    __tablename__ = "networks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    # Neutron's ``router:external`` (external-net): visible to every project.
    router_external: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    segments: Mapped[list[Segment]] = relationship(
        back_populates="network",
        lazy="raise",
        order_by="Segment.segment_index",
        passive_deletes=True,
    )
    tags: Mapped[list[NetworkTag]] = relationship(lazy="raise", passive_deletes=True)
    # Read-only: the network view lists its subnet ids.
    subnets: Mapped[list[Subnet]] = relationship(
        lazy="raise", order_by="(Subnet.created_at, Subnet.id)", viewonly=True
    )


class Segment(StandardAttrs, Base):
    __tablename__ = "segments"
    __table_args__ = (
        CheckConstraint(
            "network_type IN ('flat', 'vlan', 'vxlan', 'geneve', 'gre', 'local')",
            name="network_type",
        ),
        CheckConstraint(
            "network_type <> 'vlan' OR segmentation_id BETWEEN 1 AND 4094",
            name="vlan_id_range",
        ),
        CheckConstraint(
            "network_type NOT IN ('vxlan', 'geneve') OR segmentation_id BETWEEN 1 AND 16777215",
            name="vni_range",
        ),
        CheckConstraint(
            "network_type <> 'gre' OR segmentation_id BETWEEN 1 AND 4294967295",
            name="gre_id_range",
        ),
        # One segment per (type, physnet, ID).  NULLs are distinct in unique
        # indexes, so the expression folds them to a value: this also makes a
        # flat physnet usable once.  Local segments carry neither and repeat.
        Index(
            "uq_segments_type_physnet_id",
            "network_type",
            func.coalesce(text("physical_network"), ""),
            func.coalesce(text("segmentation_id"), 0),
            unique=True,
            sqlite_where=text("network_type <> 'local'"),
            postgresql_where=text("network_type <> 'local'"),
        ),
        # The gap queries of allocation search this index; the expression
        # index above is only the arbiter of uniqueness.
        Index("ix_segments_pool", "network_type", "physical_network", "segmentation_id"),
        Index("ix_segments_network_id_segment_index", "network_id", "segment_index"),
        # Host mapping joins reported physnets to segments (migration 0004).
        Index("ix_segments_physical_network", "physical_network", "network_type"),
        # Lists filtered by type come out in id order from this index: without
        # it SQLite sorted every match (750k at 1M segments) to return a page.
        Index("ix_segments_network_type_id", "network_type", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE")
    )
    # Its network's project, for its change events: loaded only by queries
    # that ask for it (``with_expression``), never stored; "derived" keeps it
    # out of audit snapshots.
    network_project: Mapped[str | None] = query_expression(info={"derived": True})
    name: Mapped[str | None] = mapped_column(String(NAME_LEN), default=None)
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str | None] = mapped_column(String(PHYSNET_LEN), default=None)
    segmentation_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    segment_index: Mapped[int] = mapped_column(Integer, default=0)

    network: Mapped[Network] = relationship(back_populates="segments", lazy="raise")
    tags: Mapped[list[SegmentTag]] = relationship(lazy="raise", passive_deletes=True)

    @property
    def tag_names(self) -> list[str]:
        return sorted(t.tag for t in self.tags)


class NetworkTag(Base):
    __tablename__ = "network_tags"

    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(TAG_LEN), primary_key=True)


class SegmentTag(Base):
    __tablename__ = "segment_tags"

    segment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(TAG_LEN), primary_key=True)


class NetworkSegmentRange(StandardAttrs, Base):
    """IDs that allocation may hand out: ``default`` rows mirror the config file."""

    __tablename__ = "network_segment_ranges"
    __table_args__ = (
        CheckConstraint("minimum <= maximum", name="bounds"),
        CheckConstraint("network_type IN ('vlan', 'vxlan', 'geneve', 'gre')", name="network_type"),
        CheckConstraint("shared OR project_id IS NOT NULL", name="owner"),
        Index("ix_network_segment_ranges_pool", "network_type", "physical_network"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    default: Mapped[bool] = mapped_column(Boolean, default=False)
    shared: Mapped[bool] = mapped_column(Boolean, default=True)
    project_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str | None] = mapped_column(String(PHYSNET_LEN), default=None)
    minimum: Mapped[int] = mapped_column(BigInteger)
    maximum: Mapped[int] = mapped_column(BigInteger)

    tags: Mapped[list[NetworkSegmentRangeTag]] = relationship(lazy="raise", passive_deletes=True)


class NetworkSegmentRangeTag(Base):
    __tablename__ = "network_segment_range_tags"

    range_id: Mapped[str] = mapped_column(
        String(36),
        ForeignKey("network_segment_ranges.id", ondelete="CASCADE"),
        primary_key=True,
    )
    tag: Mapped[str] = mapped_column(String(TAG_LEN), primary_key=True)


# Subnets (routed networks) -----------------------------------------------------

CIDR_LEN = 64  # a compressed IPv6 network with its prefix fits in 43 characters
IP_LEN = 64


class Subnet(StandardAttrs, Base):
    __tablename__ = "subnets"
    __table_args__ = (CheckConstraint("ip_version IN (4, 6)", name="ip_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    # RESTRICT: the database refuses to delete a segment that still has
    # subnets, whatever path the delete takes (the service checks first).
    segment_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("segments.id", ondelete="RESTRICT"), index=True, default=None
    )
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    cidr: Mapped[str] = mapped_column(String(CIDR_LEN))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway_ip: Mapped[str | None] = mapped_column(String(IP_LEN), default=None)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16), default=None)

    allocation_pools: Mapped[list[SubnetAllocationPool]] = relationship(
        lazy="raise", passive_deletes=True
    )
    tags: Mapped[list[SubnetTag]] = relationship(lazy="raise", passive_deletes=True)
    dns_nameservers: Mapped[list[SubnetDnsNameserver]] = relationship(
        lazy="raise", passive_deletes=True, order_by="SubnetDnsNameserver.position"
    )
    host_routes: Mapped[list[SubnetRoute]] = relationship(lazy="raise", passive_deletes=True)
    service_types: Mapped[list[SubnetServiceType]] = relationship(
        lazy="raise", passive_deletes=True
    )
    # Read-only: a subnet's policy target names its network's owner and sharing.
    network: Mapped[Network] = relationship(lazy="raise", viewonly=True)


class SubnetAllocationPool(Base):
    __tablename__ = "subnet_allocation_pools"

    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    first_ip: Mapped[str] = mapped_column(String(IP_LEN), primary_key=True)
    last_ip: Mapped[str] = mapped_column(String(IP_LEN))


class SubnetTag(Base):
    __tablename__ = "subnet_tags"

    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(TAG_LEN), primary_key=True)


class SubnetDnsNameserver(Base):
    """A subnet's DNS servers, in the order given (Neutron keeps it)."""

    __tablename__ = "subnet_dns_nameservers"

    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(IP_LEN), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class SubnetRoute(Base):
    __tablename__ = "subnet_routes"

    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    destination: Mapped[str] = mapped_column(String(CIDR_LEN), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(IP_LEN), primary_key=True)


class SubnetServiceType(Base):
    __tablename__ = "subnet_service_types"

    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    service_type: Mapped[str] = mapped_column(String(255), primary_key=True)


HOST_LEN = 255
AGENT_TYPE_LEN = 64
BINARY_LEN = 255


class Agent(Base):
    """One L2 agent on one host, as last reported.

    ``config_hash`` fingerprints the normalized report (type, binary, topic,
    mappings), so an unchanged report is recognised by the one indexed read
    of ``(host, agent_type)`` that every report needs anyway.
    """

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("host", "agent_type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    host: Mapped[str] = mapped_column(String(HOST_LEN))
    agent_type: Mapped[str] = mapped_column(String(AGENT_TYPE_LEN))
    binary: Mapped[str] = mapped_column(String(BINARY_LEN))
    topic: Mapped[str | None] = mapped_column(String(255), default=None)
    configurations: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    config_hash: Mapped[str] = mapped_column(String(64))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(DESCRIPTION_LEN), default="")
    heartbeat_timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AgentPhysnet(Base):
    """The physical networks an agent reports: the join key for host mapping.

    ``host`` and ``agent_type`` repeat the agent's (immutable) identity so the
    mapping queries never join ``agents`` and every plan is an index probe.
    """

    __tablename__ = "agent_physnets"
    # Both directions of the derived segment-host mapping are index range
    # scans: a host's physnets, and a physnet's hosts in host order (paging).
    __table_args__ = (
        Index("ix_agent_physnets_host_physical_network", "host", "physical_network"),
        Index("ix_agent_physnets_physical_network_host", "physical_network", "host"),
    )

    agent_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    physical_network: Mapped[str] = mapped_column(String(PHYSNET_LEN), primary_key=True)
    host: Mapped[str] = mapped_column(String(HOST_LEN))
    agent_type: Mapped[str] = mapped_column(String(AGENT_TYPE_LEN))


class Quota(Base):
    """A project's limit on one resource, where it differs from the default."""

    __tablename__ = "quotas"
    __table_args__ = (CheckConstraint('"limit" >= -1', name="limit"),)

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    # -1: unlimited (Neutron's convention).
    limit: Mapped[int] = mapped_column(BigInteger)


# Identity tables share the metadata (migrations, fixtures); they live in
# their own module.
from segmentd.db.audit import AuditEvent  # noqa: E402
from segmentd.db.events import Event, EventSinkStats  # noqa: E402
from segmentd.db.identity import ConsoleSession, Project, RoleAssignment, Token, User  # noqa: E402

__all__ = [
    "Agent",
    "AgentPhysnet",
    "AuditEvent",
    "Base",
    "ConsoleSession",
    "Event",
    "EventSinkStats",
    "Network",
    "NetworkSegmentRange",
    "NetworkSegmentRangeTag",
    "NetworkTag",
    "Project",
    "Quota",
    "RoleAssignment",
    "Segment",
    "SegmentTag",
    "Subnet",
    "SubnetAllocationPool",
    "SubnetDnsNameserver",
    "SubnetRoute",
    "SubnetServiceType",
    "SubnetTag",
    "Token",
    "User",
    "new_id",
]
