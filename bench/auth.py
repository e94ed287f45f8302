"""How the benchmark authenticates: the one place that builds auth headers."""

from __future__ import annotations

import os

TOKEN_ENV = "SEGMENTD_BENCH_TOKEN"  # noqa: S105 - an env var name, not a secret
PROJECT = "bench"


def auth_headers() -> dict[str, str]:
    """Headers every benchmark request carries.

    The runner logs in as the bootstrapped admin and sets
    ``SEGMENTD_BENCH_TOKEN``, so requests carry ``X-Auth-Token`` and the
    measured cost includes token validation, as in production.  Without it
    (a server started by hand with ``auth_strategy = "noauth"``) the
    development headers are sent.
    """
    token = os.environ.get(TOKEN_ENV)
    if token:
        return {"X-Auth-Token": token}
    return {"X-Project-Id": PROJECT, "X-Roles": "admin"}
