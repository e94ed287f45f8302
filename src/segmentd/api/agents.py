"""/v2.0/agents: state reports (single, bulk) and Neutron's agent resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends
from starlette.responses import Response

from segmentd.api import agent_schemas as wire
from segmentd.api import render
from segmentd.api.params import ListParams, fields_param, list_params
from segmentd.api.pipeline import Call, CallOf, Operation, Resource, routes
from segmentd.api.wire import json_response
from segmentd.authz import Permission
from segmentd.db.base import utcnow
from segmentd.db.models import Agent
from segmentd.services import agents
from segmentd.services.agents import ReportPolicy

router = routes("/v2.0/agents", "agents")

AGENT = Resource(
    "agent",
    Permission.GET_AGENT,
    agents.get,
    agents.target,
    event_view=lambda call, agent: view(call, agent),
    reach=agents.reach,
)
# Reports are heartbeats every 30 s per agent: not audited, their own rate bucket.
REPORT = Operation(Permission.CREATE_AGENT_REPORT, "action", rate="report")

Fields = Annotated[list[str], Depends(fields_param(wire.AGENT_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(agents.LIST_SPEC, wire.AGENT_FIELDS))]


def _policy(call: Call) -> ReportPolicy:
    s = call.runtime.settings
    return ReportPolicy(
        s.max_agents_per_report, s.agent_heartbeat_write_interval, s.max_physnets_per_agent
    )


def view(call: Call, agent: Agent) -> dict[str, Any]:
    return wire.agent_view(agent, utcnow(), call.runtime.settings.agent_down_time)


def _event_view(call: Call) -> Callable[[Agent], dict[str, Any]] | None:
    if not call.runtime.settings.events_enabled:
        return None
    return lambda agent: view(call, agent)


@router.post("/report", response_model=wire.ReportOne)
@REPORT
async def report_agent_state(call: CallOf, body: wire.AgentReportBody) -> Response:
    reports, policy = [body.agent.to_report()], _policy(call)
    return await call.run(
        lambda c: agents.report_state(
            c.db, c.allowed, reports, policy, _event_view(c), c.request_id
        ),
        lambda c, results: json_response({"agent": wire.report_view(results[0])}),
    )


@router.post("/report/bulk", response_model=wire.ReportMany)
@REPORT
async def report_agent_states(call: CallOf, body: wire.AgentBulkReportBody) -> Response:
    reports, policy = [a.to_report() for a in body.agents], _policy(call)
    return await call.run(
        lambda c: agents.report_state(
            c.db, c.allowed, reports, policy, _event_view(c), c.request_id
        ),
        lambda c, results: json_response({"agents": [wire.report_view(r) for r in results]}),
    )


@router.get("", response_model=wire.AgentMany)
@Operation(Permission.GET_AGENT, "list", AGENT)
async def list_agents(call: CallOf, params: Params) -> Response:
    return await call.run(
        lambda c: agents.list_(c.db, c.allowed, params.query), render.page("agents", view, params)
    )


@router.get("/{agent_id}", response_model=wire.AgentOne)
@Operation(Permission.GET_AGENT, "show", AGENT)
async def show_agent(call: CallOf, agent_id: str, fields: Fields) -> Response:
    return await call.run(lambda c: c.target, render.one("agent", view, fields), agent_id)


@router.put("/{agent_id}", response_model=wire.AgentOne)
@Operation(Permission.UPDATE_AGENT, "update", AGENT)
async def update_agent(call: CallOf, agent_id: str, body: wire.AgentUpdateBody) -> Response:
    changes = agents.AgentUpdate(body.agent.admin_state_up, body.agent.description)
    return await call.run(
        lambda c: agents.update_agent(c.db, c.target, changes),
        render.one("agent", view),
        agent_id,
    )


@router.delete("/{agent_id}", status_code=204)
@Operation(Permission.DELETE_AGENT, "delete", AGENT)
async def delete_agent(call: CallOf, agent_id: str) -> Response:
    return await call.run(lambda c: agents.delete_agent(c.db, c.target), None, agent_id)
