"""Security suite plumbing: the fuzz run's totals go to the terminal summary."""

from __future__ import annotations

import sys
from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    fuzz = sys.modules.get("tests.security.test_fuzz")
    if fuzz is not None and fuzz.TOTALS["operations"]:
        terminalreporter.write_sep("-", "schemathesis")
        terminalreporter.write_line(fuzz.fuzz_summary())
