"""How the benchmark authenticates: the one place that builds auth headers."""

from __future__ import annotations

import os

TOKEN_ENV = "SEGMENTD_BENCH_TOKEN"  # noqa: S105 - an env var name, not a secret
PROJECT = "bench"


def auth_headers() -> dict[str, str]:
    """Headers every benchmark request carries.

    Today the server runs the development ``noauth`` strategy, which trusts
    ``X-Project-Id``/``X-Roles``.  When token auth lands, set
    ``SEGMENTD_BENCH_TOKEN`` (from ``POST /identity/v3/auth/tokens``) and the
    same runs send ``X-Auth-Token`` instead; nothing else needs to change.
    """
    token = os.environ.get(TOKEN_ENV)
    if token:
        return {"X-Auth-Token": token}
    return {"X-Project-Id": PROJECT, "X-Roles": "admin"}
