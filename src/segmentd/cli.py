"""``segmentd``: serve the API and manage the database."""

from __future__ import annotations

import argparse
import sys

from segmentd import identity_cli
from segmentd.config import load_settings
from segmentd.db import migrate


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings()
    if args.upgrade:
        migrate.upgrade(settings.database_url)
    identity_cli.serve_hints(settings)
    print(f"segmentd listening on http://{args.host}:{args.port} (database {_safe_url(settings.database_url)})", flush=True)
    uvicorn.run(
        "segmentd.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


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
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--no-upgrade", dest="upgrade", action="store_false",
                       help="do not apply pending migrations before serving")
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
