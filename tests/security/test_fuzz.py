"""schemathesis against the service's own OpenAPI spec: every operation, two personas.

Each operation gets ``FUZZ_EXAMPLES`` generated requests (positive and
negative data) per persona (an admin token and a member token, token-mode
app).  Every response must be below 500 (503 is an honest answer only where
the domain says so: an exhausted range), free of leak patterns, and conform
to the response schema where the spec declares one.  The totals are printed
in the terminal summary (``fuzz: N requests, M operations, failures: 0``).

``SEGMENTD_FUZZ_EXAMPLES`` raises or lowers the budget (default 25).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from segmentd.api.runtime import Runtime
from tests.identity_support import Identity

FUZZ_EXAMPLES = int(os.environ.get("SEGMENTD_FUZZ_EXAMPLES", "25"))
LEAKS = re.compile(
    r"Traceback|sqlalchemy|psycopg|sqlite|/work/|\.py\"|\.py\b|File \"|"
    r"\b(SELECT|INSERT|UPDATE|DELETE)\b.{0,40}\b(FROM|INTO)\b.{0,20}\b(segments|networks|subnets|agents|users|tokens)\b",
    re.I | re.S,
)
TOTALS: Counter[str] = Counter()
FAILURES: list[str] = []
# Everything the fuzzer has sent so far: a list echoes what earlier cases
# stored (an agent report whose host is "sqlite_x"), which reveals nothing.
SENT: list[str] = []


def fuzz_summary() -> str:
    return (
        f"fuzz: {TOTALS['requests']} requests over {TOTALS['operations']} operation x persona runs, "
        f"{TOTALS['5xx']} server errors, failures: {len(FAILURES)}"
    )


@pytest.fixture
def personas(token_runtime: Runtime, token_app: Any) -> dict[str, str]:
    ident = Identity(token_runtime)
    admin_project, project = ident.project("admin"), ident.project("p")
    admin = ident.user("admin", "admin-password", admin_project, "admin")
    member = ident.user("member", "member-password", project, "member")
    return {"admin": ident.token(admin, admin_project), "member": ident.token(member, project)}


@pytest.fixture
def fuzz_schema(token_app: Any, personas: dict[str, str]) -> Any:
    # The schema is served to authenticated callers only.
    headers = {"X-Auth-Token": personas["member"]}
    return schemathesis.openapi.from_asgi("/openapi.json", token_app, headers=headers)


def _operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        yield result.ok()


def _leak(text: str, case: Any) -> str | None:
    """A leak pattern in ``text`` that no request sent: a 404 naming the
    project "sqlite_begin" the fuzzer asked for, or a list showing a name an
    earlier case stored, echoes the client's own input and reveals nothing."""
    SENT.append(
        " ".join(
            map(str, (unquote(case.formatted_path), case.path_parameters, case.query, case.body))
        ).lower()
    )
    for found in LEAKS.finditer(text):
        if not any(found.group(0).lower() in sent for sent in SENT):
            return found.group(0)
    return None


def _check_one(case: Any, token: str, label: str) -> None:
    if isinstance(case.query, dict) and "wait" in case.query:
        # The events long poll holds an empty answer up to `wait` seconds by
        # design (tests/events cover it); the fuzzer checks its inputs, not its patience.
        case.query["wait"] = 0
    response = case.call(headers={"X-Auth-Token": token})
    TOTALS["requests"] += 1
    where = f"{label} {case.method} {case.formatted_path} -> {response.status_code}"
    text = response.text
    if response.status_code >= 500:
        TOTALS["5xx"] += 1
        domain_503 = response.status_code == 503 and "NoNetworkAvailable" in text
        if not domain_503:
            FAILURES.append(f"{where}: {text[:200]}")
            raise AssertionError(f"{where}: {text[:500]}")
    leak = _leak(text, case)
    if leak:
        FAILURES.append(f"{where}: leak {leak!r}")
        raise AssertionError(f"{where}: leak {leak!r} in {text[:500]}")
    if 200 <= response.status_code < 300:
        case.validate_response(response, checks=[response_schema_conformance])


def _fuzzer(operation: Any, token: str, label: str) -> Any:
    modes = [
        operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(modes))
    def run(case: Any) -> None:
        _check_one(case, token, label)

    return run


def test_fuzz_every_operation(fuzz_schema: Any, personas: dict[str, str]) -> None:
    operations = list(_operations(fuzz_schema))
    assert len(operations) >= 30, "the spec lost operations"
    for operation in operations:
        for label, token in personas.items():
            TOTALS["operations"] += 1
            _fuzzer(operation, token, label)()
    print("\n" + fuzz_summary())
    assert not FAILURES
