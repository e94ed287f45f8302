"""``python -m bench [--quick] [--db sqlite|postgresql|all]``: run, print, record."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import server
from bench.report import commit, load_average, run_header, table, write_results
from bench.runner import Plan, run_all

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="about a second per operation (CI smoke)")
    p.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    p.add_argument("--duration", type=float, help="seconds measured per operation")
    p.add_argument(
        "--pg-url",
        default=server.PG_DEFAULT_URL,
        help="benchmark database, recreated for every run",
    )
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to prepend to")
    return p.parse_args(argv)


def _dbs(choice: str, pg_url: str) -> tuple[str, ...]:
    wanted = ("sqlite", "postgresql") if choice == "all" else (choice,)
    # Probe once so an absent PostgreSQL is one note, not a failure per configuration.
    if "postgresql" in wanted and server.fresh_postgres(pg_url) is None:
        wanted = tuple(db for db in wanted if db != "postgresql")
    return wanted


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    # Full: 3 s per operation keeps 3 configurations x 6 operations on 2 DBs
    # and 2 floors (72 phases) under ~7 minutes; quick is for smoke tests only.
    duration = args.duration or (0.5 if args.quick else 3.0)
    dbs = _dbs(args.db, args.pg_url)
    if not dbs:
        print("nothing to run")
        return 1
    # Taken before the run: edits made while it runs must not relabel it.
    load_before, revision = load_average(), commit()
    with tempfile.TemporaryDirectory(prefix="segmentd-bench-") as tmp:
        plan = Plan(
            duration,
            min(1.0, duration / 4),
            300 if args.quick else 1000,
            dbs,
            args.pg_url,
            Path(tmp),
        )
        rows, ran = run_all(plan)
    section = (
        run_header(ran, duration, args.quick, load_before, revision) + "\n\n" + table(rows) + "\n"
    )
    print("\n" + section)
    write_results(args.results, section)
    print(f"results prepended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
