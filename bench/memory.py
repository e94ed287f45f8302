"""Where a worker's memory goes: ``python -m bench.memory``.

Four views, each in fresh interpreters of this venv:

1. RSS after each import step on the way to ``segmentd.asgi`` (cumulative:
   what the step adds given everything before it), and each step alone in a
   fresh interpreter (what it costs with its own dependencies);
2. the Python heap after ``import segmentd.asgi`` by top-level package
   (tracemalloc: Python objects only, not shared libraries);
3. which module first imports each third-party package (an import hook);
4. a real server's RSS when ready and after traffic: ``segmentd serve``
   (migrates in a child interpreter, then serves in its own process with one
   worker), with ``--no-upgrade``, and uvicorn on ``segmentd.asgi:app``
   directly.

Results: ``bench/RESULTS-memory.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import server
from bench.report import commit
from segmentd.db import migrate

RESULTS = Path(__file__).with_name("RESULTS-memory.md")

# (label, modules), cumulative, in the order a worker reaches them: the
# server (uvicorn) first, then what ``import segmentd.asgi`` loads on SQLite.
STEPS: list[tuple[str, list[str]]] = [
    ("interpreter", []),
    (
        "stdlib the stack uses",
        [
            "asyncio",
            "json",
            "logging.config",
            "ssl",
            "email.utils",
            "http.cookies",
            "uuid",
            "decimal",
        ],
    ),
    (
        "uvicorn + uvloop + httptools",
        ["uvicorn", "uvicorn.loops.uvloop", "uvicorn.protocols.http.httptools_impl"],
    ),
    ("orjson", ["orjson"]),
    ("pydantic", ["pydantic"]),
    ("pydantic-settings", ["pydantic_settings"]),
    ("sqlalchemy + orm", ["sqlalchemy", "sqlalchemy.orm"]),
    (
        "sqlalchemy sqlite + postgresql dialects",
        ["sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql"],
    ),
    ("starlette", ["starlette.applications", "starlette.responses", "starlette.routing"]),
    ("fastapi (+ opentelemetry-api)", ["fastapi"]),
    ("oslo.policy", ["oslo_policy.policy"]),
    ("limits", ["limits", "limits.storage", "limits.strategies"]),
    ("prometheus_client", ["prometheus_client"]),
    ("argon2", ["argon2"]),
    ("segmentd.asgi (modules, app created, policy parsed)", ["segmentd.asgi"]),
    (
        "alembic + mako (only `segmentd db upgrade` and `serve`'s migration child load them)",
        ["alembic.command", "alembic.runtime.migration"],
    ),
]
# Parts, each alone: (label, modules, whether a SQLite worker loads it).
PARTS: list[tuple[str, list[str], str]] = [
    ("psycopg", ["psycopg", "sqlalchemy.dialects.postgresql.psycopg"], "PostgreSQL only"),
    ("redis", ["redis"], "only with redis:// rate-limit storage"),
    (
        "requests + urllib3",
        ["requests"],
        "not loaded: segmentd skips oslo.policy's http/https check plugins (Keystone mode loads it)",
    ),
    (
        "opentelemetry-api",
        ["opentelemetry.trace", "opentelemetry.metrics"],
        "loaded: FastAPI imports it",
    ),
]
# Preludes run before ``import segmentd.asgi`` (RSS after, median of 3):
# what switching one thing off would save, without changing segmentd.
EXPERIMENTS: list[tuple[str, str]] = [
    ("as it is", ""),
    (
        "after migrating in-process (what `serve` did before it migrated in a child)",
        "import os; from segmentd.db import migrate; migrate.upgrade(os.environ['SEGMENTD_DATABASE_URL'])",
    ),
]

CHILD = r"""
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
steps = json.loads(sys.argv[1])
for label, modules in steps:
    before = set(m.split(".")[0] for m in sys.modules)
    for m in modules:
        importlib.import_module(m)
    new = sorted(set(m.split(".")[0] for m in sys.modules) - before)
    print(json.dumps({"label": label, "rss_kb": rss(), "new": new}), flush=True)
"""

HEAP = r"""
import json, sys, sysconfig, tracemalloc
tracemalloc.start()
import segmentd.asgi
snap = tracemalloc.take_snapshot()
stdlib = sysconfig.get_paths()["stdlib"]
by = {}
for stat in snap.statistics("filename"):
    name = stat.traceback[0].filename
    if "site-packages/" in name:
        key = name.split("site-packages/", 1)[1].split("/", 1)[0]
    elif name.startswith(stdlib):
        key = "stdlib"
    elif "/src/segmentd/" in name:
        key = "segmentd"
    elif name.startswith("<frozen importlib"):
        key = "code objects of every module (unmarshalled by importlib)"
    else:
        key = "other"
    key = key.removesuffix(".py")
    by[key] = by.get(key, 0) + stat.size
print(json.dumps(by))
"""

WHO = r"""
import json, sys
first = {}
class Who:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in first and top not in sys.modules:
            frame = sys._getframe(1)
            while frame and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
                frame = frame.f_back
            first[top] = frame.f_globals.get("__name__", "?") if frame else "?"
        return None
sys.meta_path.insert(0, Who())
import segmentd.asgi
print(json.dumps(first))
"""


# Importing segmentd.asgi creates the app, which opens its database: a
# migrated throwaway one, set by main().
ENV: dict[str, str] = {}


def _python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=server.REPO,
        env={**os.environ, **ENV},
    )
    return done.stdout


def cumulative() -> list[dict[str, object]]:
    return [json.loads(line) for line in _python(CHILD, json.dumps(STEPS)).splitlines()]


def _median_rss(steps: list[tuple[str, list[str]]]) -> int:
    sizes = [
        json.loads(_python(CHILD, json.dumps(steps)).splitlines()[-1])["rss_kb"] for _ in range(3)
    ]
    return int(sorted(sizes)[1])


def alone() -> dict[str, int]:
    """RSS each step adds to a bare interpreter on its own (median of 3)."""
    base = _median_rss(STEPS[:1])
    parts = [(label, modules) for label, modules, _ in PARTS]
    return {label: _median_rss([(label, modules)]) - base for label, modules in STEPS[1:] + parts}


EXPERIMENT = r"""
exec(__import__("sys").argv[1])
import segmentd.asgi
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]))
"""


def experiments() -> list[tuple[str, int]]:
    out = []
    for label, prelude in EXPERIMENTS:
        sizes = sorted(int(_python(EXPERIMENT, prelude)) for _ in range(3))
        out.append((label, sizes[1]))
    return out


def server_rss(workdir: Path) -> list[tuple[str, float, float]]:
    """(how, RSS MB when ready, RSS MB after traffic) for the ways to run a worker."""
    from bench.runner import Client
    from bench.wire import QUICK, run_rounds, segmentd_target

    rows = []
    client = Client()
    try:
        for how in ("segmentd serve", "segmentd serve --no-upgrade", "uvicorn segmentd.asgi:app"):
            target = segmentd_target(how.replace(" ", "_").replace("-", ""), workdir, launch=how)
            try:
                time.sleep(1)
                ready = server.rss_mb(target.pid)[1]
                run_rounds(client, [target], QUICK, 3, warmup=True)
                rows.append((how, ready, server.rss_mb(target.pid)[1]))
            finally:
                target.stop()
    finally:
        client.close()
    return rows


def report(
    steps: list[dict[str, object]],
    solo: dict[str, int],
    heap: dict[str, int],
    who: dict[str, str],
    servers: list[tuple[str, float, float]],
    tried: list[tuple[str, int]],
) -> str:
    lines = [
        "| step | RSS after, MB | added, MB | alone, MB | packages it brings in |",
        "|---|---:|---:|---:|---|",
    ]
    previous = None
    for step in steps:
        rss = int(step["rss_kb"])  # type: ignore[call-overload]
        added = "" if previous is None else f"{(rss - previous) / 1024:.1f}"
        label = str(step["label"])
        solo_mb = f"{solo[label] / 1024:.1f}" if label in solo else ""
        new = ", ".join(step["new"])  # type: ignore[arg-type]
        lines.append(f"| {label} | {rss / 1024:.1f} | {added} | {solo_mb} | {new} |")
        previous = rss
    for label, _, note in PARTS:
        if label in solo:
            lines.append(f"| {label} (alone) | | | {solo[label] / 1024:.1f} | {note} |")
    base = tried[0][1] if tried else 0
    tried_lines = ["| `import segmentd.asgi` ... | RSS, MB | vs as it is, MB |", "|---|---:|---:|"]
    tried_lines += [
        f"| {label} | {kb / 1024:.1f} | {(kb - base) / 1024:+.1f} |" for label, kb in tried
    ]
    heap_lines = ["| package | Python heap after import, MB |", "|---|---:|"]
    for name, size in sorted(heap.items(), key=lambda kv: -kv[1])[:20]:
        heap_lines.append(f"| {name} | {size / 1048576:.2f} |")
    who_lines = ["| package | first imported by |", "|---|---|"]
    for name, importer in sorted(who.items()):
        if name not in sys.stdlib_module_names and not name.startswith("_"):
            who_lines.append(f"| {name} | {importer} |")
    srv_lines = [
        "| how the worker runs | RSS ready, MB | RSS after traffic, MB |",
        "|---|---:|---:|",
    ]
    srv_lines += [f"| `{how}` | {ready:.1f} | {after:.1f} |" for how, ready, after in servers]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n\n".join(
        [
            "# Worker memory (`python -m bench.memory`)",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            f"## {now} - commit {commit()}",
            "### A real worker",
            "\n".join(srv_lines),
            "### RSS by import step",
            "\n".join(lines),
            "### What switching one thing off would save",
            "\n".join(tried_lines),
            "### Python heap by package (tracemalloc, after `import segmentd.asgi`)",
            "Python objects only (shared libraries are in RSS, not here); a module's code "
            "objects are allocated by importlib, so they appear as one line, not per package.",
            "\n".join(heap_lines),
            "### Who imports what",
            "\n".join(who_lines),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    p.add_argument("--no-servers", action="store_true", help="imports only (no server runs)")
    p.add_argument(
        "--quick", action="store_true", help="one interpreter per view, no servers (smoke test)"
    )
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="segmentd-memory-") as tmp:
        url = f"sqlite:///{tmp}/imports.db"
        migrate.upgrade(url)
        ENV["SEGMENTD_DATABASE_URL"] = url
        steps, solo = cumulative(), ({} if args.quick else alone())
        # tracemalloc slows every import two- to threefold: not in the smoke test.
        heap = {} if args.quick else json.loads(_python(HEAP))
        who = json.loads(_python(WHO))
        tried = [] if args.quick else experiments()
        servers = [] if args.no_servers or args.quick else server_rss(Path(tmp))
    text = report(steps, solo, heap, who, servers, tried)
    print(text)
    if not args.no_write:
        args.results.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
