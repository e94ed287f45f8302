"""The bench smoke tests start their own servers on their own SQLite files and
never use the suite's test database: they run in the SQLite pass of
``make test`` only, not a second time in the PostgreSQL pass."""

from __future__ import annotations

import os

import pytest

from tests.conftest import TEST_DB_ENV


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not os.environ.get(TEST_DB_ENV):
        return
    skip = pytest.mark.skip(reason="bench smoke: database-independent, run in the SQLite pass")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(skip)
