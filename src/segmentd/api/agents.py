"""/v2.0/agents: state reports (single, bulk) and Neutron's agent resource."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from segmentd.api import agent_schemas as wire
from segmentd.api import schemas
from segmentd.api.deps import (
    Context,
    ListParams,
    TransactionalRoute,
    fields_param,
    list_params,
    reader,
    writer,
)
from segmentd.api.wire import json_response, no_content
from segmentd.authz import Permission
from segmentd.db.base import utcnow
from segmentd.db.models import Agent
from segmentd.services import agents
from segmentd.services.agents import ReportPolicy
from segmentd.services.audit import snapshot

router = APIRouter(route_class=TransactionalRoute, prefix="/v2.0/agents", tags=["agents"])

Fields = Annotated[list[str], Depends(fields_param(wire.AGENT_FIELDS))]
Params = Annotated[ListParams, Depends(list_params(agents.LIST_SPEC, wire.AGENT_FIELDS))]


def _policy(ctx: Context) -> ReportPolicy:
    s = ctx.runtime.settings
    return ReportPolicy(
        s.max_agents_per_report, s.agent_heartbeat_write_interval, s.max_physnets_per_agent
    )


def _view(ctx: Context, agent: Agent, fields: list[str]) -> dict[str, object]:
    view = wire.agent_view(agent, utcnow(), ctx.runtime.settings.agent_down_time)
    return schemas.project(view, fields)


@router.post("/report")
def report_agent_state(
    body: wire.AgentReportBody, ctx: Context = writer(Permission.CREATE_AGENT_REPORT)
) -> Response:
    [result] = agents.report_state(
        ctx.session, ctx.principal, [body.agent.to_report()], _policy(ctx)
    )
    return json_response({"agent": wire.report_view(result)})


@router.post("/report/bulk")
def report_agent_states(
    body: wire.AgentBulkReportBody, ctx: Context = writer(Permission.CREATE_AGENT_REPORT)
) -> Response:
    reports = [a.to_report() for a in body.agents]
    results = agents.report_state(ctx.session, ctx.principal, reports, _policy(ctx))
    return json_response({"agents": [wire.report_view(r) for r in results]})


@router.get("")
def list_agents(
    request: Request, params: Params, ctx: Context = reader(Permission.GET_AGENT)
) -> Response:
    page = agents.list_(ctx.session, ctx.principal, params.query)
    views = [_view(ctx, a, params.fields) for a in page.items]
    return json_response(
        schemas.collection(request.url, "agents", views, page, params.query, params.limit_given)
    )


@router.get("/{agent_id}")
def show_agent(
    agent_id: str, fields: Fields, ctx: Context = reader(Permission.GET_AGENT)
) -> Response:
    return json_response(
        {"agent": _view(ctx, agents.get(ctx.session, ctx.principal, agent_id), fields)}
    )


@router.put("/{agent_id}")
def update_agent(
    agent_id: str, body: wire.AgentUpdateBody, ctx: Context = writer(Permission.UPDATE_AGENT)
) -> Response:
    changes = agents.AgentUpdate(body.agent.admin_state_up, body.agent.description)
    before = snapshot(agents.get(ctx.session, ctx.principal, agent_id))
    agent = agents.update_agent(ctx.session, ctx.principal, agent_id, changes)
    ctx.audit("update", "agent", agent.id, before, snapshot(agent))
    return json_response({"agent": _view(ctx, agent, [])})


@router.delete("/{agent_id}", status_code=204)
def delete_agent(agent_id: str, ctx: Context = writer(Permission.DELETE_AGENT)) -> Response:
    before = snapshot(agents.get(ctx.session, ctx.principal, agent_id))
    agents.delete_agent(ctx.session, ctx.principal, agent_id)
    ctx.audit("delete", "agent", agent_id, before=before)
    return no_content()
