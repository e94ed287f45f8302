"""Console pages (GET): thin handlers over the API's services, one
``Operation`` each, authenticated by the session cookie."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from starlette.responses import FileResponse, Response

from segmentd import errors
from segmentd.api import networks as network_routes
from segmentd.api.params import HostName
from segmentd.api.pipeline import Call, CallOf, Kind, Operation, RateClass, Resource, routes
from segmentd.api.segments import SEGMENT
from segmentd.authz import Permission, Scope, can
from segmentd.db.base import Page, utcnow
from segmentd.services import agents, audit, console, host_queries, networks, segment_ranges
from segmentd.services import segments as segment_service
from segmentd.services import subnets as subnet_service
from segmentd.services.query import ListQuery, QuerySpec, parse_filters
from segmentd.services.usage import pool_usage
from segmentd.ui import session as ui_session
from segmentd.ui.web import PREFIX, STATIC, html, query_string

# Pages, not API resources: left out of the OpenAPI document.
router = routes(PREFIX, "console")
router.include_in_schema = False


def page(
    permission: Permission,
    kind: Kind = "list",
    resource: Resource[Any] | None = None,
    rate: RateClass | Literal["default"] = "default",
) -> Operation:
    """A console page or form: the API's permission, authenticated by session."""
    return Operation(permission, kind, resource, rate=rate, via=ui_session.authenticate)


# What a console link needs to be shown: the permission of the page it opens.
NAV = (
    ("overview", "Overview", "/", Permission.GET_NETWORK),
    ("pools", "Pools", "/pools", Permission.GET_ALLOCATION_USAGE),
    ("networks", "Networks", "/networks", Permission.GET_NETWORK),
    ("segments", "Segments", "/segments", Permission.GET_SEGMENT),
    ("ranges", "Ranges", "/ranges", Permission.GET_NETWORK_SEGMENT_RANGE),
    ("hosts", "Hosts", "/hosts", Permission.GET_SEGMENT_HOST_MAPPING),
    ("agents", "Agents", "/agents", Permission.GET_AGENT),
    ("audit", "Audit", "/audit", Permission.GET_AUDIT_EVENT),
)


def context(call: Call, current: str, **values: Any) -> dict[str, Any]:
    """What every page's layout needs: who is logged in, its nav, its CSRF token."""
    me = ui_session.console_of(call.request)
    principal = call.caller
    nav = [(key, label, PREFIX + path) for key, label, path, perm in NAV if can(principal, perm)]
    return {
        "me": me.info,
        "csrf": me.csrf,
        "is_admin": principal.is_admin,
        "nav": nav,
        "current": current,
        "can": lambda name, target=None: can(principal, Permission(name), target),
        "now": utcnow(),
        **values,
    }


def render(template: str, current: str, **values: Any) -> Any:
    def answer(call: Call, found: Any) -> Response:
        return html(template, context(call, current, found=found, **values))

    return answer


def list_query(
    call: Call, spec: QuerySpec, raw: Mapping[str, str | None], marker: str | None = None
) -> ListQuery:
    """A list page's query: its filters checked against the API's allow-list."""
    settings = call.runtime.settings
    given = {k: [v] for k, v in raw.items() if v not in (None, "")}
    filters, tags = parse_filters(spec, given, settings.max_filter_values)
    if marker:
        try:
            marker = spec.marker(marker)
        except ValueError:
            raise errors.InvalidQuery(error_message=f"marker must be {spec.marker_kind}") from None
    return ListQuery(filters=filters, tag_filters=tags, limit=settings.ui_page_size, marker=marker)


def next_link(request: Request, found: Page) -> str | None:
    """The next page's address (keyset: the last row's id), if there is one."""
    if not found.has_more or not found.items:
        return None
    params = dict(request.query_params)
    params["marker"] = str(found.items[-1].id)
    return query_string(request.url.path, **params)


Text = Annotated[str | None, Query(max_length=255)]
# A network page shows this many hosts of each segment, for this many segments.
HOSTS_SHOWN = 8
HOSTS_PER_SEGMENT_MAX = 32


@router.get("/static/{name}")
@Operation.public(rate=None)
async def static(name: str) -> Response:
    """The stylesheet (no scripts exist): package files, named exactly."""
    allowed = {p.name: p for p in STATIC.iterdir() if p.is_file()}
    found: Path | None = allowed.get(name)
    if found is None:
        raise errors.NotFound()
    media = {".css": "text/css", ".svg": "image/svg+xml"}.get(found.suffix, "text/plain")
    response = FileResponse(found, media_type=media)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/")
@page(Permission.GET_NETWORK)
async def overview(call: CallOf) -> Response:
    rt = call.runtime

    def work(c: Call) -> dict[str, Any]:
        principal, now = c.caller, rt.clock()
        usage_scope = Scope(principal, Permission.GET_ALLOCATION_USAGE)
        pools = pool_usage(c.db) if usage_scope.unrestricted() else []
        pools.sort(key=lambda p: (p.free / p.size if p.size else 1.0, p.network_type))
        return {
            "networks": console.count_networks(c.db, c.allowed),
            "segments": console.count_segments(c.db, Scope(principal, Permission.GET_SEGMENT)),
            "hosts": console.count_hosts(
                c.db, Scope(principal, Permission.GET_SEGMENT_HOST_MAPPING)
            ),
            "agents": console.count_agents(
                c.db, Scope(principal, Permission.GET_AGENT), now, rt.settings.agent_down_time
            ),
            "pools": pools[:5],
        }

    return await call.run(work, render("overview.html", "overview"))


@router.get("/pools")
@page(Permission.GET_ALLOCATION_USAGE)
async def pools(call: CallOf) -> Response:
    def work(c: Call) -> list[console.Pool]:
        return [console.draw(c.db, p) for p in console.pools(c.db, c.allowed)]

    return await call.run(work, render("pools.html", "pools"))


@router.get("/networks")
@page(Permission.GET_NETWORK)
async def network_list(
    call: CallOf,
    request: Request,
    name: Text = None,
    project_id: Text = None,
    network_type: Text = None,
    marker: Text = None,
) -> Response:
    raw = {"name": name, "project_id": project_id, "provider:network_type": network_type}

    def work(c: Call) -> Page:
        query = list_query(c, networks.LIST_SPEC, raw, marker)
        return networks.list_(c.db, c.allowed, query)

    filters = {"name": name, "project_id": project_id, "network_type": network_type}

    def answer(c: Call, found: Page) -> Response:
        views = [network_routes.view(c, n) for n in found.items]
        return html(
            "networks.html",
            context(
                c,
                "networks",
                found=found,
                views=views,
                filters=filters,
                next=next_link(request, found),
            ),
        )

    return await call.run(work, answer)


@router.get("/networks/new")
@page(Permission.CREATE_NETWORK, "info")
async def network_new(call: CallOf) -> Response:
    rt = call.runtime
    return html(
        "network_new.html",
        {
            **context(call, "networks"),
            "form": {},
            "error": None,
            "types": sorted(rt.drivers),
            "physnets": rt.settings.vlan_physnets(),
        },
    )


@router.get("/networks/{network_id}")
@page(Permission.GET_NETWORK, "show", network_routes.NETWORK)
async def network_page(call: CallOf, network_id: str) -> Response:
    def work(c: Call) -> dict[str, Any]:
        network = c.target
        principal = c.caller
        subnet_scope = Scope(principal, Permission.GET_SUBNET)
        query = ListQuery(limit=c.runtime.settings.ui_page_size)
        subnets = subnet_service.list_(
            c.db, subnet_scope, query, subnet_service.on_network(network.id)
        )
        # Grouped by segment only for callers who may see a subnet's segment
        # (get_subnet:segment_id, admin-only by default), as the API shows it.
        by_segment: dict[str | None, list[Any]] = {}
        for subnet in subnets.items:
            shown = can(principal, Permission.GET_SUBNET_SEGMENT_ID, subnet_service.target(subnet))
            by_segment.setdefault(subnet.segment_id if shown else None, []).append(subnet)
        history: Page = Page([], False)
        audit_scope = Scope(principal, Permission.GET_AUDIT_EVENT)
        if audit_scope.unrestricted():
            history = audit.list_(
                c.db,
                audit_scope,
                ListQuery(filters={"resource_id": [network.id]}, limit=20),
            )
        # The routed-network picture: each segment's first hosts (the
        # segment's page has them all).  Hosts are mapped by physical
        # network: one indexed query per (physnet, type), none for tunnels.
        hosts: dict[str, Page] = {}
        if Scope(principal, Permission.GET_SEGMENT_HOST_MAPPING).unrestricted():
            found: dict[tuple[str, str], Page] = {}
            for segment in network.segments[:HOSTS_PER_SEGMENT_MAX]:
                if segment.physical_network is None:
                    hosts[segment.id] = Page([], False)
                    continue
                key = (segment.physical_network, segment.network_type)
                if key not in found:
                    query = ListQuery(limit=HOSTS_SHOWN)
                    found[key] = host_queries.hosts_of_segment(c.db, segment, query)
                hosts[segment.id] = found[key]
        return {
            "network": network,
            "view": network_routes.view(c, network),
            "hosts": hosts,
            "subnets": by_segment,
            "more_subnets": subnets.has_more,
            "history": history,
        }

    return await call.run(work, render("network.html", "networks"), network_id)


@router.get("/segments")
@page(Permission.GET_SEGMENT)
async def segment_list(
    call: CallOf,
    request: Request,
    network_type: Text = None,
    physical_network: Text = None,
    segmentation_id: Text = None,
    network_id: Text = None,
    marker: Text = None,
) -> Response:
    raw = {
        "network_type": network_type,
        "physical_network": physical_network,
        "segmentation_id": segmentation_id,
        "network_id": network_id,
    }

    def work(c: Call) -> Page:
        query = list_query(c, segment_service.LIST_SPEC, raw, marker)
        return segment_service.list_(c.db, c.allowed, query)

    def answer(c: Call, found: Page) -> Response:
        return html(
            "segments.html",
            context(c, "segments", found=found, filters=raw, next=next_link(request, found)),
        )

    return await call.run(work, answer)


@router.get("/segments/{segment_id}")
@page(Permission.GET_SEGMENT, "show", SEGMENT)
async def segment_page(
    call: CallOf, request: Request, segment_id: str, marker: Text = None
) -> Response:
    def work(c: Call) -> dict[str, Any]:
        segment = c.target
        principal = c.caller
        mapping = Scope(principal, Permission.GET_SEGMENT_HOST_MAPPING)
        hosts: Page = Page([], False)
        if mapping.unrestricted():
            query = list_query(c, host_queries.SEGMENT_HOSTS_SPEC, {}, marker)
            hosts = host_queries.hosts_of_segment(c.db, segment, query)
        subnets = subnet_service.list_(
            c.db,
            Scope(principal, Permission.GET_SUBNET),
            ListQuery(limit=c.runtime.settings.ui_page_size),
            subnet_service.on_segment(segment.id),
        )
        network = networks.get(c.db, Scope(principal, Permission.GET_NETWORK), segment.network_id)
        return {"segment": segment, "hosts": hosts, "subnets": subnets, "network": network}

    def answer(c: Call, found: dict[str, Any]) -> Response:
        nxt = next_link(request, found["hosts"])
        return html("segment.html", context(c, "segments", found=found, next=nxt))

    return await call.run(work, answer, segment_id)


@router.get("/ranges")
@page(Permission.GET_NETWORK_SEGMENT_RANGE)
async def range_list(call: CallOf, request: Request, marker: Text = None) -> Response:
    rt = call.runtime

    def work(c: Call) -> Page:
        query = list_query(c, segment_ranges.LIST_SPEC, {}, marker)
        return segment_ranges.list_(c.db, c.allowed, query)

    def answer(c: Call, found: Page) -> Response:
        return html(
            "ranges.html",
            context(
                c,
                "ranges",
                found=found,
                next=next_link(request, found),
                form={},
                error=None,
                types=sorted(t for t in rt.drivers if t in ("vlan", "vxlan", "geneve", "gre")),
                physnets=rt.settings.vlan_physnets(),
            ),
        )

    return await call.run(work, answer)


@router.get("/hosts")
@page(Permission.GET_SEGMENT_HOST_MAPPING)
async def host_list(call: CallOf, request: Request, marker: Text = None) -> Response:
    def work(c: Call) -> Page:
        query = list_query(c, host_queries.MAPPED_HOSTS_SPEC, {}, marker)
        return host_queries.mapped_hosts(c.db, c.allowed, query)

    def answer(c: Call, found: Page) -> Response:
        return html("hosts.html", context(c, "hosts", found=found, next=next_link(request, found)))

    return await call.run(work, answer)


@router.get("/hosts/{host}")
@page(Permission.GET_SEGMENT_HOST_MAPPING)
async def host_page(
    call: CallOf, request: Request, host: HostName, marker: Text = None
) -> Response:
    def work(c: Call) -> dict[str, Any]:
        principal = c.caller
        query = list_query(c, segment_service.LIST_SPEC, {}, marker)
        segments = host_queries.segments_of_host(c.db, c.allowed, host, query)
        agent_scope = Scope(principal, Permission.GET_AGENT)
        host_agents: list[Any] = []
        if agent_scope.unrestricted():
            agent_query = ListQuery(filters={"host": [host]}, limit=100)
            host_agents = list(agents.list_(c.db, agent_scope, agent_query).items)
        subnets = subnet_service.list_(
            c.db,
            Scope(principal, Permission.GET_SUBNET),
            ListQuery(limit=c.runtime.settings.ui_page_size),
            subnet_service.on_host(host),
        )
        physnets = console.host_physnets(c.db, host)
        return {
            "host": host,
            "segments": segments,
            "agents": host_agents,
            "subnets": subnets,
            "physnets": physnets,
        }

    def answer(c: Call, found: dict[str, Any]) -> Response:
        nxt = next_link(request, found["segments"])
        down = c.runtime.settings.agent_down_time
        alive = {a.id: agents.is_alive(a, c.runtime.clock(), down) for a in found["agents"]}
        return html("host.html", context(c, "hosts", found=found, next=nxt, alive=alive))

    return await call.run(work, answer)


@router.get("/agents")
@page(Permission.GET_AGENT)
async def agent_list(
    call: CallOf, request: Request, host: Text = None, agent_type: Text = None, marker: Text = None
) -> Response:
    raw = {"host": host, "agent_type": agent_type}

    def work(c: Call) -> Page:
        query = list_query(c, agents.LIST_SPEC, raw, marker)
        return agents.list_(c.db, c.allowed, query)

    def answer(c: Call, found: Page) -> Response:
        down = c.runtime.settings.agent_down_time
        now = c.runtime.clock()
        alive = {a.id: agents.is_alive(a, now, down) for a in found.items}
        return html(
            "agents.html",
            context(
                c, "agents", found=found, alive=alive, filters=raw, next=next_link(request, found)
            ),
        )

    return await call.run(work, answer)


@router.get("/audit")
@page(Permission.GET_AUDIT_EVENT)
async def audit_trail(
    call: CallOf,
    request: Request,
    resource_type: Text = None,
    resource_id: Text = None,
    user_id: Text = None,
    action: Text = None,
    outcome: Text = None,
    since: Text = None,
    until: Text = None,
    marker: Text = None,
) -> Response:
    raw = {
        "resource_type": resource_type,
        "resource_id": resource_id,
        "user_id": user_id,
        "action": action,
        "outcome": outcome,
        "since": since,
        "until": until,
    }

    def work(c: Call) -> Page:
        query = list_query(c, audit.LIST_SPEC, raw, marker)
        query.sorts = [("created_at", False)]  # newest first
        return audit.list_(c.db, c.allowed, query)

    def answer(c: Call, found: Page) -> Response:
        return html(
            "audit.html",
            context(c, "audit", found=found, filters=raw, next=next_link(request, found)),
        )

    return await call.run(work, answer)
