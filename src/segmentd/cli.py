"""``segmentd``: serve the API and manage the database."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from segmentd import __version__, identity_cli, listen
from segmentd.cli_output import add_format_option, render
from segmentd.config import Settings, load_settings
from segmentd.db import migrate

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _serve(args: argparse.Namespace) -> int:
    """Uvicorn's own supervisor runs the workers (see README, "Running in production").

    Each worker is a fresh interpreter that imports ``segmentd.asgi``; the
    supervisor restarts a worker that dies and, on SIGTERM, lets every worker
    finish its in-flight requests for up to ``--graceful-timeout`` seconds.
    """
    settings = load_settings()
    try:
        sock = listen.bind(args.host, args.port)
    except OSError as exc:
        print(
            f"segmentd: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    with sock:
        if args.upgrade and not _upgrade_in_child(settings.database_url):
            return 1
        identity_cli.serve_hints(settings)
        url = listen.served_url(args.host, args.port)
        _warn_public_url(settings.public_url, args.host, args.port)
        print(
            f"segmentd listening on {url} (auth_url {settings.public_base(url)}/identity/v3, "
            f"database {safe_url(settings.database_url)})",
            flush=True,
        )
        return _run_uvicorn(args, settings, sock)


def _upgrade_in_child(database_url: str) -> bool:
    """Migrates in a child interpreter: Alembic and Mako (about 8 MB) never
    load in the process that then serves (with one worker, uvicorn serves
    in this one).  The URL travels in the environment, not on the command
    line, where any local user's ``ps`` would show its password."""
    env = dict(os.environ, SEGMENTD_DATABASE_URL=database_url)
    code = "import os; from segmentd.db import migrate; migrate.upgrade(os.environ['SEGMENTD_DATABASE_URL'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        print(
            f"segmentd: migrating {safe_url(database_url)} failed (exit {done.returncode}); "
            "not serving",
            file=sys.stderr,
        )
    return done.returncode == 0


def _warn_public_url(public_url: str | None, host: str, port: int) -> None:
    """The token catalog sends clients to public_url: say so when it is elsewhere."""
    if public_url is None:
        return
    why = listen.public_url_mismatch(public_url, host, port)
    if why is not None:
        print(
            f"segmentd: warning: public_url {public_url} does not match the address served "
            f"({why}); clients follow the token catalog to public_url. Right behind a proxy; "
            "otherwise unset it (SEGMENTD_PUBLIC_URL) to advertise the address served",
            file=sys.stderr,
            flush=True,
        )


def _run_uvicorn(args: argparse.Namespace, settings: Settings, sock: socket.socket) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from segmentd.api.observability import log_config, prepare_multiproc_dir
    from segmentd.http_limits import HttpLimits, protocol_class

    level = args.log_level or settings.log_level
    metrics_dir, owned = _metrics_dir(args.workers)
    if metrics_dir is not None:
        # Before any worker imports prometheus-client: it picks its storage at import.
        prepare_multiproc_dir(metrics_dir)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    config = uvicorn.Config(
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
    server = uvicorn.Server(config)
    try:
        if args.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
            return 0
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return 0
    finally:
        if metrics_dir is not None and owned:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0 if server.started else 3  # 3: uvicorn's start-up failure code


def _metrics_dir(workers: int) -> tuple[Path | None, bool]:
    """Where workers share metric files (the operator's directory, or a fresh one we own)."""
    if os.environ.get(MULTIPROC_ENV):
        return Path(os.environ[MULTIPROC_ENV]), False
    if workers <= 1:
        return None, False
    return Path(tempfile.mkdtemp(prefix="segmentd-metrics-")), True


def safe_url(url: str) -> str:
    """The database URL without its password, for the start-up line."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at {safe_url(settings.database_url)} upgraded to {args.revision}")
    return 0


def _settings(args: argparse.Namespace) -> int:
    """The settings in force (environment, then the config file, then defaults)."""
    from pydantic import BaseModel, SecretStr

    def shown(value: object) -> object:
        return "(set)" if isinstance(value, SecretStr) else value

    settings = load_settings()
    rows: list[dict[str, object]] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):  # a section: one row per option, secrets hidden
            for option in type(value).model_fields:
                rows.append({"setting": f"{name}.{option}", "value": shown(getattr(value, option))})
            continue
        if name == "database_url":
            value = safe_url(value)
        rows.append({"setting": name, "value": shown(value)})
    print(render(rows, ("setting", "value"), args.format))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="segmentd")
    top.add_argument("--version", action="version", version=f"segmentd {__version__}")
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
    shown = sub.add_parser(
        "settings", help="the settings in force (SEGMENTD_* variables, then segmentd.toml)"
    )
    add_format_option(shown)
    shown.set_defaults(func=_settings)
    identity_cli.add_commands(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`segmentd policy show | head`): stop quietly,
        # with the status a shell gives a process killed by SIGPIPE.  Python
        # would try to flush stdout again at exit, so point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except ValidationError as exc:  # settings refused: say which, without a traceback
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            print(
                f"segmentd: invalid settings: {where + ': ' if where else ''}{message}",
                file=sys.stderr,
            )
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
