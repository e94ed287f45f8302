"""``segmentd``: serve the API and manage the database."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from segmentd import identity_cli
from segmentd.config import load_settings
from segmentd.db import migrate

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _serve(args: argparse.Namespace) -> int:
    """Uvicorn's own supervisor runs the workers (see README, "Running in production").

    Each worker is a fresh interpreter that imports ``segmentd.asgi``; the
    supervisor restarts a worker that dies and, on SIGTERM, lets every worker
    finish its in-flight requests for up to ``--graceful-timeout`` seconds.
    """
    import uvicorn

    from segmentd.api.observability import log_config, prepare_multiproc_dir
    from segmentd.http_limits import HttpLimits, protocol_class

    settings = load_settings()
    if args.upgrade:
        migrate.upgrade(settings.database_url)
    identity_cli.serve_hints(settings)
    level = args.log_level or settings.log_level
    metrics_dir, owned = _metrics_dir(args.workers)
    if metrics_dir is not None:
        # Before any worker imports prometheus-client: it picks its storage at import.
        prepare_multiproc_dir(metrics_dir)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    print(
        f"segmentd listening on http://{args.host}:{args.port} (database {_safe_url(settings.database_url)})",
        flush=True,
    )
    try:
        uvicorn.run(
            "segmentd.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=level,
            log_config=log_config(level, args.log_format or settings.log_format),
            access_log=False,  # segmentd.access logs each request, with route and principal
            timeout_graceful_shutdown=args.graceful_timeout,
            # Bounds on reading requests (README, "Limits and guards").
            http=protocol_class(HttpLimits.from_settings(settings)),
            limit_concurrency=settings.http_max_connections,
        )
    finally:
        if metrics_dir is not None and owned:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir(workers: int) -> tuple[Path | None, bool]:
    """Where workers share metric files (the operator's directory, or a fresh one we own)."""
    if os.environ.get(MULTIPROC_ENV):
        return Path(os.environ[MULTIPROC_ENV]), False
    if workers <= 1:
        return None, False
    return Path(tempfile.mkdtemp(prefix="segmentd-metrics-")), True


def _safe_url(url: str) -> str:
    """The database URL without its password, for the start-up line."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at {_safe_url(settings.database_url)} upgraded to {args.revision}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="segmentd")
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9696)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--log-level",
        default=None,
        choices=["critical", "error", "warning", "info", "debug"],
        help="default: the log_level setting (info)",
    )
    serve.add_argument(
        "--log-format",
        default=None,
        choices=["json", "text"],
        help="default: the log_format setting (json)",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        default=30,
        help="seconds in-flight requests may take to finish on SIGTERM",
    )
    serve.add_argument(
        "--no-upgrade",
        dest="upgrade",
        action="store_false",
        help="do not apply pending migrations before serving",
    )
    serve.set_defaults(func=_serve)
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_db_upgrade)
    identity_cli.add_commands(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
