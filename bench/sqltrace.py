"""The SQL a live server runs, and the database's plan for each statement.

A server started with ``trace_env(path)`` records every statement it sends
(``before_cursor_execute`` on every SQLAlchemy engine, installed by a
``sitecustomize`` module put first on ``PYTHONPATH``; nothing in segmentd
changes).  ``explain`` asks the same database for each statement's plan, so
a query that grows with the table shows why: a SCAN instead of a SEARCH.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

HOOK = """
import json, os
_path = os.environ.get("SEGMENTD_BENCH_SQL_TRACE")
if _path:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def _trace(conn, cursor, statement, parameters, context, executemany):
        with open(_path, "a") as out:
            out.write(json.dumps({"sql": statement, "params": parameters}, default=str) + "\\n")

    event.listen(Engine, "before_cursor_execute", _trace)
"""


def trace_env(workdir: Path, path: Path) -> dict[str, str]:
    """Environment additions that make a server log its SQL to ``path``."""
    hook_dir = workdir / "sqltrace"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    pythonpath = os.pathsep.join(p for p in (str(hook_dir), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": pythonpath, "SEGMENTD_BENCH_SQL_TRACE": str(path)}


def take(path: Path) -> list[tuple[str, Any]]:
    """The statements logged since the last call (the log is emptied)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    path.write_text("")
    out = []
    for line in lines:
        entry = json.loads(line)
        verb = entry["sql"].lstrip().split(None, 1)[0].upper()
        if verb in ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE"):
            out.append((entry["sql"], entry["params"]))
    return out


def explain(database_url: str, sql: str, params: Any) -> list[str]:
    """The plan's lines (SQLite's EXPLAIN QUERY PLAN tree, or PostgreSQL's EXPLAIN)."""
    try:
        return _explain(database_url, sql, params)
    except Exception as exc:  # a parameter the log could not keep (JSON, bytes)
        return [f"(not explained: {type(exc).__name__})"]


def _explain(database_url: str, sql: str, params: Any) -> list[str]:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params or ()).fetchall()
        depth: dict[int, int] = {0: 0}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            lines.append("  " * (depth[node] - 1) + detail)
        return lines
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        result = conn.execute("EXPLAIN " + sql, params or None).fetchall()
        conn.rollback()
    return [row[0] for row in result]


def scans(plan: list[str], database_url: str) -> bool:
    """Whether a plan reads a whole table or index rather than seeking into it."""
    if database_url.startswith("sqlite"):
        return any(line.strip().startswith("SCAN ") and "CONSTANT ROW" not in line for line in plan)
    return any("Seq Scan" in line for line in plan)
