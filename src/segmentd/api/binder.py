"""Binding a pipeline endpoint's arguments once per route, not once per request.

FastAPI's solver re-walks each endpoint's dependency tree on every request
(cache keys, per-parameter multidict lookups, one validation call per
parameter): a fifth of a one-row GET's CPU in the profile.  Most pipeline
endpoints take only a handful of kinds of argument, so ``compile_binder``
turns the signature into a list of getters when the route is built:

- the request's ``Call`` (``CallOf``);
- a plain ``str`` path parameter;
- a dependency that offers a ``fast(request)`` twin (``params``: ``fields``,
  ``If-Match``), which must answer exactly as the dependency does;
- the JSON body, read and validated as FastAPI does (same content-type
  rules, same errors: the one validation-error handler words them).

A signature with anything else gets ``None`` and FastAPI's own solver: the
binder is an optimisation with the same answers, never a second set of
rules.  The route table test checks that both paths answer alike.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import params
from fastapi._compat import Undefined  # the solver's "no body" marker
from fastapi.dependencies.utils import request_body_to_args
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Getter = Callable[[Request, Any], Awaitable[Any]]
Binder = Callable[[Request, Any], Awaitable[dict[str, Any]]]
# What a dependency offers to be bound without the solver: request -> value.
FAST = "fast"


def compile_binder(route: APIRoute, call_dependency: Callable[..., Any]) -> Binder | None:
    """The route's arguments as a list of getters, or ``None`` (use FastAPI's).

    ``call_dependency`` is the dependency behind ``CallOf``."""
    endpoint = route.endpoint
    if not inspect.iscoroutinefunction(endpoint) or route.dependencies:
        return None
    hints = get_type_hints(endpoint, include_extras=True)
    if hints.get("return") is not Response:
        return None  # FastAPI would serialise it: keep its path
    getters: list[tuple[str, Getter]] = []
    for name in inspect.signature(endpoint).parameters:
        getter = _getter(route, name, hints.get(name), call_dependency)
        if getter is None:
            return None
        getters.append((name, getter))

    async def bind(request: Request, call: Any) -> dict[str, Any]:
        return {name: await get(request, call) for name, get in getters}

    return bind


def _getter(
    route: APIRoute, name: str, hint: Any, call_dependency: Callable[..., Any]
) -> Getter | None:
    if get_origin(hint) is Annotated:
        depends = [m for m in get_args(hint)[1:] if isinstance(m, params.Depends)]
        if len(depends) != 1:
            return None
        dependency = depends[0].dependency
        if dependency is call_dependency:
            return _the_call
        fast = getattr(dependency, FAST, None)
        return _fast_getter(fast) if fast is not None else None
    if hint is str and name in route.param_convertors:
        return _path_getter(name)
    if route.body_field is not None and route.body_field.name == name:
        return _body_getter(route)
    return None


async def _the_call(request: Request, call: Any) -> Any:
    return call


def _fast_getter(fast: Callable[[Request], Any]) -> Getter:
    async def get(request: Request, call: Any) -> Any:
        return fast(request)

    return get


def _path_getter(name: str) -> Getter:
    async def get(request: Request, call: Any) -> Any:
        return request.path_params[name]

    return get


def _body_getter(route: APIRoute) -> Getter:
    field = route.body_field
    assert field is not None  # noqa: S101 - checked by the caller
    embed = route._embed_body_fields

    async def get(request: Request, call: Any) -> Any:
        body = parse_json_body(await request.body(), request.headers.get("content-type"))
        values, found = await request_body_to_args([field], body, embed)
        if found:
            raise RequestValidationError(found, body=body)
        return values[field.name]

    return get


def parse_json_body(raw: bytes, content_type: str | None) -> Any:
    """FastAPI's reading of a body (without strict content types): JSON when
    the type is absent or JSON, the bytes otherwise, nothing when empty."""
    if not raw:
        return Undefined
    if content_type:
        mime = content_type.partition(";")[0].strip().lower()
        major, _, minor = mime.partition("/")
        if major != "application" or not (minor == "json" or minor.endswith("+json")):
            return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from exc
    except ValueError as exc:  # not UTF-8/16/32: FastAPI's answer to an unreadable body
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
