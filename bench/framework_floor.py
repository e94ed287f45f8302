"""The framework floor: FastAPI answering what ``bench.floor`` answers.

One async route per method on ``/floor/<status>/<size>`` reads the request
body and returns the same prebuilt JSON bytes as the bare ASGI floor.  No
dependencies, no validation, no thread pool, no database: the least any
FastAPI service on this machine can cost per request.  Its ratio to the
bare floor shows what the framework takes before segmentd does anything;
segmentd's ratio to it shows what segmentd's own work costs.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from bench.floor import body_of_size

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/")
async def ready() -> Response:  # the runner's readiness probe, as bench.floor answers it
    return Response(body_of_size(12), media_type="application/json")


@app.api_route("/floor/{status}/{size}", methods=["GET", "POST", "PUT", "DELETE"])
async def floor(status: int, size: int, request: Request) -> Response:
    await request.body()
    if status == 204:
        return Response(status_code=204)
    return Response(body_of_size(size), status_code=status, media_type="application/json")
