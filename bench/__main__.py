"""``python -m bench``: run, print, record.

Modes:

* ``python -m bench [--quick] [--db sqlite|postgresql|all]``: the standard
  run, six operations at 1 and 16 clients, 1 and 2 workers, with floors.
* ``python -m bench --incumbent [--rounds N]``: segmentd and Neutron 29
  (``../shared/incumbent``) sent the same requests, server CPU side by side.
* ``python -m bench --baseline-ref REF [--rounds N]``: this checkout against
  the source of git ref REF, same requests, alternating phase by phase.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import server
from bench.report import commit, load_average, run_header, table, write_results
from bench.runner import Plan, run_all

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
AB_RESULTS = HERE / "RESULTS-ab.md"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small counts, short phases (CI smoke)")
    p.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    p.add_argument("--duration", type=float, help="seconds measured per operation")
    p.add_argument(
        "--pg-url",
        default=server.PG_DEFAULT_URL,
        help="benchmark database, recreated for every run",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--incumbent", action="store_true", help="measure Neutron 29 beside segmentd (SQLite)"
    )
    mode.add_argument("--baseline-ref", metavar="REF", help="A/B against the source of git REF")
    p.add_argument(
        "--rounds", type=int, help="measured rounds (default: 1 incumbent, 5 A/B, 2 A/B quick)"
    )
    p.add_argument("--results", type=Path, help="markdown file to prepend to")
    return p.parse_args(argv)


def _dbs(choice: str, pg_url: str) -> tuple[str, ...]:
    wanted: tuple[str, ...] = ("sqlite", "postgresql") if choice == "all" else (choice,)
    # Probe once so an absent PostgreSQL is one note, not a failure per configuration.
    if "postgresql" in wanted and server.fresh_postgres(pg_url) is None:
        wanted = tuple(db for db in wanted if db != "postgresql")
    return wanted


def _standard(args: argparse.Namespace) -> int:
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
            150 if args.quick else 1000,
            dbs,
            args.pg_url,
            Path(tmp),
        )
        rows, ran = run_all(plan)
    section = (
        run_header(ran, duration, args.quick, load_before, revision) + "\n\n" + table(rows) + "\n"
    )
    print("\n" + section)
    results = args.results or RESULTS
    write_results(results, section)
    print(f"results prepended to {results}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.incumbent or args.baseline_ref:
        from bench import compare

        if args.incumbent:
            compare.run_incumbent(args.quick, args.rounds or 1, args.results or RESULTS)
        else:
            rounds = args.rounds or (2 if args.quick else 5)
            compare.run_ab(args.baseline_ref, args.quick, rounds, args.results or AB_RESULTS)
        return 0
    return _standard(args)


if __name__ == "__main__":
    sys.exit(main())
