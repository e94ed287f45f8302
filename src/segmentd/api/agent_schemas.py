"""Wire format of agents and the host mapping (Neutron's ``agent`` extension).

Shape and bounds only (tier 1); the per-agent-type rules (which mapping keys a
type may report, which network types it serves) live in ``services``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field

from segmentd.api.schemas import (
    Description,
    Links,
    PhysicalNetwork,
    Strict,
    UpdateAttrs,
    View,
    field_names,
)
from segmentd.db.models import Agent
from segmentd.services.agents import AgentReport, ReportResult, is_alive
from segmentd.services.host_mapping import HOST_PATTERN

AgentType = Literal[
    "Open vSwitch agent", "Linux bridge agent", "NIC Switch agent", "OVN Controller agent"
]
Host = Annotated[str, Field(min_length=1, max_length=255, pattern=HOST_PATTERN)]
Token = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.\-]+$")]
Topic = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.\-/]+$")]
# Interface, bridge or PCI netdev names (``eth0``, ``br-ex``, ``enp3s0f1``, ``0000:03:00.1``).
Device = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
MAX_PHYSNETS_PER_AGENT = 256
MAX_DEVICES_PER_PHYSNET = 64
Mappings = Annotated[dict[PhysicalNetwork, Device], Field(max_length=MAX_PHYSNETS_PER_AGENT)]
DeviceMappings = Annotated[
    dict[
        PhysicalNetwork,
        Device | Annotated[list[Device], Field(min_length=1, max_length=MAX_DEVICES_PER_PHYSNET)],
    ],
    Field(max_length=MAX_PHYSNETS_PER_AGENT),
]
# Hard ceiling for the schema; the configured max_agents_per_report is lower.
BULK_HARD_LIMIT = 10_000

AGENT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # Neutron's agent timestamps
AGENT_READ_ONLY = (
    "id",
    "agent_type",
    "binary",
    "host",
    "topic",
    "alive",
    "configurations",
    "heartbeat_timestamp",
    "started_at",
    "created_at",
    "availability_zone",
)


class AgentConfigurations(Strict):
    bridge_mappings: Mappings | None = None
    interface_mappings: Mappings | None = None
    device_mappings: DeviceMappings | None = None
    tunnel_types: Annotated[list[Literal["vxlan", "geneve", "gre"]], Field(max_length=3)] | None = (
        None
    )


class AgentReportIn(Strict):
    host: Host
    agent_type: AgentType
    binary: Token
    topic: Topic | None = None
    configurations: AgentConfigurations = Field(default_factory=AgentConfigurations)
    start_flag: bool = False

    def to_report(self) -> AgentReport:
        configs = self.configurations.model_dump(exclude_none=True, exclude={"tunnel_types"})
        return AgentReport(
            self.host,
            self.agent_type,
            self.binary,
            self.topic,
            configs,
            self.start_flag,
            tuple(self.configurations.tunnel_types or ()),
        )


class AgentReportBody(Strict):
    agent: AgentReportIn


class AgentBulkReportBody(Strict):
    agents: Annotated[list[AgentReportIn], Field(max_length=BULK_HARD_LIMIT)]


class AgentUpdate(UpdateAttrs):
    IMMUTABLE = AGENT_READ_ONLY

    admin_state_up: bool | None = None
    description: Description | None = None


class AgentUpdateBody(Strict):
    agent: AgentUpdate


class AgentView(View):
    id: str
    agent_type: AgentType
    binary: str
    host: str
    topic: str | None
    admin_state_up: bool
    alive: bool
    description: str
    configurations: dict[str, Any]
    heartbeat_timestamp: str
    started_at: str
    created_at: str
    availability_zone: str | None


class AgentOne(View):
    agent: AgentView


class AgentMany(View):
    agents: list[AgentView]
    agents_links: Links = None


class ReportView(View):
    id: str
    host: str
    agent_type: AgentType
    result: Literal["created", "updated", "heartbeat", "unchanged"]


class ReportOne(View):
    agent: ReportView


class ReportMany(View):
    agents: list[ReportView]


AGENT_FIELDS = field_names(AgentView)


def agent_view(agent: Agent, now: dt.datetime, down_time: int) -> dict[str, Any]:
    return {
        "id": agent.id,
        "agent_type": agent.agent_type,
        "binary": agent.binary,
        "host": agent.host,
        "topic": agent.topic,
        "admin_state_up": agent.admin_state_up,
        "alive": is_alive(agent, now, down_time),
        "description": agent.description,
        "configurations": agent.configurations,
        "heartbeat_timestamp": agent.heartbeat_timestamp.strftime(AGENT_TIME_FORMAT),
        "started_at": agent.started_at.strftime(AGENT_TIME_FORMAT),
        "created_at": agent.created_at.strftime(AGENT_TIME_FORMAT),
        "availability_zone": None,
    }


def report_view(result: ReportResult) -> dict[str, str]:
    return {
        "id": result.id,
        "host": result.host,
        "agent_type": result.agent_type,
        "result": result.result,
    }
