"""The migrations build exactly the models' schema, and reverse cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmentd.db import migrate
from segmentd.db.models import Base, Network, Segment


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_head_constant_names_the_newest_migration() -> None:
    # Serving workers read HEAD instead of loading Alembic (see segmentd.db.migrate).
    assert migrate.script_head() == migrate.HEAD, "a new migration must move migrate.HEAD"


def test_serving_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/serve.db"
    migrate.upgrade(url)
    code = "import sys, segmentd.asgi; print('alembic' in sys.modules, 'mako' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SEGMENTD_DATABASE_URL": url},
    ).stdout.split()
    assert out == ["False", "False"]


def test_upgrade_matches_models_and_downgrade_reverses(tmp_path: object, database_url: str) -> None:
    url = database_url if database_url.startswith("postgresql") else f"sqlite:///{tmp_path}/m.db"
    migrate.upgrade(url)
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes; Alembic says so and skips them.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        migrate.check(url)
    assert _tables(url) == set(Base.metadata.tables)
    migrate.downgrade(url, "base")
    assert _tables(url) == set()
    migrate.upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("vlan", "physnet1", 7), ("vlan", "physnet1", 7)),
        (("flat", "physnet1", None), ("flat", "physnet1", None)),
        (("vxlan", None, 7), ("vxlan", None, 7)),
    ],
)
def test_database_refuses_duplicate_segments(
    engine: Engine, first: tuple[Any, ...], second: tuple[Any, ...]
) -> None:
    """The last line of defence holds even for writes that bypass the service."""
    net_id = str(uuid.uuid4())
    net = Network(id=net_id, project_id="p")
    with Session(engine) as session, session.begin():
        session.add(net)
        session.flush()
        session.add(_segment(net_id, first))
    with Session(engine) as session, pytest.raises(IntegrityError), session.begin():
        session.add(_segment(net_id, second))


def test_database_allows_repeated_local_segments(engine: Engine) -> None:
    net_id = str(uuid.uuid4())
    net = Network(id=net_id, project_id="p")
    with Session(engine) as session, session.begin():
        session.add(net)
        session.flush()
        session.add_all([_segment(net_id, ("local", None, None)) for _ in range(2)])


def _segment(network_id: str, key: tuple[Any, ...]) -> Segment:
    network_type, physnet, seg_id = key
    return Segment(
        network_id=network_id,
        network_type=network_type,
        physical_network=physnet,
        segmentation_id=seg_id,
    )
