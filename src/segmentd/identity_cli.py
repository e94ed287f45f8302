"""``segmentd bootstrap``, ``project``, ``user``, ``role``, ``token``, ``policy``.

Operator commands over the built-in identity store.  Passwords never travel
on the command line: they come from an environment variable, standard input
(``--password-stdin``) or an interactive prompt.  Every command but
``bootstrap`` (which migrates) first checks that the database exists and is
migrated, and says which database it looked at when it is not.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.authz import Policy
from segmentd.cli_output import add_format_option, render
from segmentd.config import Settings, load_settings
from segmentd.db import migrate
from segmentd.db.base import Database, utcnow
from segmentd.db.identity import ROLE_NAMES, User
from segmentd.identity import store, tokens
from segmentd.identity.passwords import Passwords

BOOTSTRAP_PASSWORD_ENV = "SEGMENTD_BOOTSTRAP_PASSWORD"  # noqa: S105 - a variable name
USER_PASSWORD_ENV = "SEGMENTD_USER_PASSWORD"  # noqa: S105 - a variable name


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    migrate.require_current(settings.database_url)
    db = Database.open(
        settings.database_url, settings.db_statement_timeout_ms, settings.sqlite_busy_timeout_ms
    )
    try:
        with db.transaction(write=True) as session:
            yield session
    finally:
        db.dispose()


def _passwords(settings: Settings) -> Passwords:
    return Passwords(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )


def _run(
    body: Callable[[Settings, argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        settings = load_settings()
        try:
            if settings.auth_strategy == "keystone" and body in _BUILT_IN_STORE:
                print(f"error: {_keystone_note(settings)}; use `openstack`", file=sys.stderr)
                return 1
            return body(settings, args)
        except errors.SegmentdError as exc:
            print(f"error: {exc.msg}", file=sys.stderr)
        except SQLAlchemyError as exc:
            # One line, never the driver's traceback (it can be 50 lines of SQL).
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"]
            shown = migrate.shown_url(settings.database_url)
            print(f"error: database {shown}: {reason[0]}", file=sys.stderr)
        return 1

    return command


def _keystone_note(settings: Settings) -> str:
    uri = settings.keystone_authtoken.authenticate_uri()
    return (
        f"auth_strategy is 'keystone': users, projects and roles live in the Keystone at {uri}; "
        "the built-in identity is off"
    )


def _bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    """Idempotent: creates what is missing, never changes an existing password."""
    if settings.auth_strategy == "keystone":
        migrate.upgrade(settings.database_url)
        print(f"{_keystone_note(settings)}: nothing to bootstrap (database migrated).")
        print(
            "Register segmentd in the Keystone catalog as README 'Joining an existing cloud' says."
        )
        return 0
    migrate.upgrade(settings.database_url)
    generated = None
    with _session(settings) as session:
        project = store.find_project(session, store.Ref(name=args.project_name))
        if project is None:
            project = store.create_project(session, args.project_name, "Administrators")
        user = store.find_user(session, store.Ref(name=args.username))
        if user is None:
            password = os.environ.get(BOOTSTRAP_PASSWORD_ENV)
            if not password:
                password = generated = secrets.token_urlsafe(18)
            user = store.create_user(
                session, _passwords(settings), args.username, password, project
            )
            created = True
        else:
            created = False
        store.add_role(session, user, project, "admin")
    if created:
        print(
            f"created user {args.username!r} with the admin role on project {args.project_name!r}"
        )
        if generated:
            # Shown once; only its hash is stored.
            print(f"password: {generated}")
    else:
        print(
            f"user {args.username!r} exists; ensured the admin role on project {args.project_name!r}"
        )
    print(f"database: {migrate.shown_url(settings.database_url)}")
    if settings.public_url:
        print(f"auth_url: {settings.public_url.rstrip('/')}/identity/v3")
    else:
        print("auth_url: <the address `segmentd serve` prints>/identity/v3")
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if os.environ.get(USER_PASSWORD_ENV):
        return os.environ[USER_PASSWORD_ENV]
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    if args.no_password:
        return None
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise errors.InvalidInput(error_message="passwords do not match")
        return first or None
    raise errors.InvalidInput(
        error_message=f"no password: set {USER_PASSWORD_ENV}, use --password-stdin or --no-password"
    )


def _project_create(settings: Settings, args: argparse.Namespace) -> int:
    with _session(settings) as session:
        project = store.create_project(session, args.name, args.description)
        print(project.id)
    return 0


def _user_create(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password(args)
    with _session(settings) as session:
        project = store.lookup_project(session, args.project)
        user = store.create_user(session, _passwords(settings), args.name, password, project)
        for role in args.role or ["member"]:
            store.add_role(session, user, project, role)
        print(user.id)
    return 0


def _role(settings: Settings, args: argparse.Namespace) -> int:
    with _session(settings) as session:
        user = store.lookup_user(session, args.user)
        project = store.lookup_project(session, args.project)
        if args.role_command == "add":
            store.add_role(session, user, project, args.role)
        else:
            store.remove_role(session, user, project, args.role)
    return 0


def _print(rows: list[dict[str, object]], columns: tuple[str, ...], fmt: str) -> None:
    text = render(rows, columns, fmt)
    if text:
        print(text)


PROJECT_COLUMNS = ("id", "name", "description", "enabled")
USER_COLUMNS = ("id", "name", "default_project", "enabled", "password", "roles")
ASSIGNMENT_COLUMNS = ("user", "project", "role", "user_id", "project_id")


def _project_list(settings: Settings, args: argparse.Namespace) -> int:
    with _session(settings) as session:
        rows = [
            {"id": p.id, "name": p.name, "description": p.description, "enabled": p.enabled}
            for p in store.list_projects(session)
        ]
    _print(rows, PROJECT_COLUMNS, args.format)
    return 0


def _project_delete(settings: Settings, args: argparse.Namespace) -> int:
    with _session(settings) as session:
        for name in args.projects:
            store.delete_project(session, store.lookup_project(session, name))
    return 0


def _user_list(settings: Settings, args: argparse.Namespace) -> int:
    with _session(settings) as session:
        names = {p.id: p.name for p in store.list_projects(session)}
        roles: dict[str, list[str]] = {}
        for a in store.list_assignments(session):
            roles.setdefault(a.user_id, []).append(f"{a.role} on {a.project_name}")
        rows: list[dict[str, object]] = [
            {
                "id": u.id,
                "name": u.name,
                "default_project": names.get(u.default_project_id or ""),
                "enabled": u.enabled,
                # Token-only users (agents) have no password to log in with.
                "password": u.password_hash is not None,
                "roles": roles.get(u.id, []),
            }
            for u in store.list_users(session)
        ]
    _print(rows, USER_COLUMNS, args.format)
    return 0


def _user_delete(settings: Settings, args: argparse.Namespace) -> int:
    with _session(settings) as session:
        for name in args.users:
            store.delete_user(session, store.lookup_user(session, name))
    return 0


def _user_set(settings: Settings, args: argparse.Namespace) -> int:
    """A new password (the way back from a lost admin password); old tokens stop working."""
    password = _read_password(args)
    if password is None:
        raise errors.InvalidInput(error_message="an empty password cannot be set")
    with _session(settings) as session:
        user = store.lookup_user(session, args.user)
        revoked = store.reset_password(session, _passwords(settings), user, password, utcnow())
    print(f"password of {user.name!r} changed; {revoked} live token(s) revoked")
    return 0


def _role_list(settings: Settings, args: argparse.Namespace) -> int:
    with _session(settings) as session:
        user = store.lookup_user(session, args.user) if args.user else None
        project = store.lookup_project(session, args.project) if args.project else None
        found = store.list_assignments(
            session, user.id if user else None, project.id if project else None, args.role
        )
    rows: list[dict[str, object]] = [
        {
            "user": a.user_name,
            "project": a.project_name,
            "role": a.role,
            "user_id": a.user_id,
            "project_id": a.project_id,
        }
        for a in found
    ]
    _print(rows, ASSIGNMENT_COLUMNS, args.format)
    return 0


def _token_issue(settings: Settings, args: argparse.Namespace) -> int:
    ttl = args.ttl or settings.token_ttl_seconds
    if not 1 <= ttl <= settings.max_token_ttl_seconds:
        raise errors.InvalidInput(error_message=f"--ttl must be 1-{settings.max_token_ttl_seconds}")
    with _session(settings) as session:
        user = store.lookup_user(session, args.user)
        project = store.lookup_project(session, args.project)
        raw, info = tokens.issue(
            session, user, project, utcnow(), ttl, kind=args.kind, methods=("token",)
        )
    print(raw)
    print(f"expires_at: {info.expires_at.isoformat()}", file=sys.stderr)
    return 0


def _policy_show(settings: Settings, args: argparse.Namespace) -> int:
    for name, check in Policy.from_file(settings.policy_file).rules_table():
        print(f'"{name}": "{check}"')
    return 0


# Commands that write the built-in identity store: refused with an external Keystone.
_BUILT_IN_STORE: frozenset[Callable[[Settings, argparse.Namespace], int]] = frozenset(
    {_project_create, _user_create, _role, _token_issue}
)


def serve_hints(settings: Settings) -> None:
    """One line for an operator starting a fresh deployment with tokens on."""
    if settings.auth_strategy == "keystone":
        print(f"segmentd: {_keystone_note(settings)}", flush=True)
        return
    if settings.auth_strategy != "token":
        print(
            f"segmentd: auth_strategy={settings.auth_strategy}: requests are NOT authenticated",
            flush=True,
        )
        return
    try:
        with _session(settings) as session:
            anyone = session.scalars(select(User.id).limit(1)).first()
    except Exception:  # the database may not be migrated (--no-upgrade); serve anyway
        return
    if anyone is None:
        print(
            "segmentd: no users yet; run `segmentd bootstrap` to create the admin user", flush=True
        )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    boot = sub.add_parser(
        "bootstrap", help="migrate the database and create the admin project and user"
    )
    boot.add_argument("--project-name", default="admin")
    boot.add_argument("--username", default="admin")
    boot.set_defaults(func=_run(_bootstrap))

    project = sub.add_parser("project", help="identity projects").add_subparsers(
        dest="project_command", required=True
    )
    create = project.add_parser("create")
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.set_defaults(func=_run(_project_create))
    listing = project.add_parser("list", help="every project")
    add_format_option(listing)
    listing.set_defaults(func=_run(_project_list))
    remove = project.add_parser(
        "delete", help="delete projects that own no resources (their role assignments go too)"
    )
    remove.add_argument("projects", nargs="+", metavar="PROJECT", help="id or name")
    remove.set_defaults(func=_run(_project_delete))

    user = sub.add_parser("user", help="identity users").add_subparsers(
        dest="user_command", required=True
    )
    create = user.add_parser("create")
    create.add_argument("name")
    create.add_argument(
        "--project", required=True, help="project id or name (also the default project)"
    )
    create.add_argument(
        "--role", action="append", choices=ROLE_NAMES, help="repeatable; default member"
    )
    create.add_argument("--password-stdin", action="store_true")
    create.add_argument("--no-password", action="store_true", help="token-only user (agents)")
    create.set_defaults(func=_run(_user_create))
    listing = user.add_parser("list", help="every user, with its role assignments")
    add_format_option(listing)
    listing.set_defaults(func=_run(_user_list))
    remove = user.add_parser("delete", help="delete users (their assignments and tokens go too)")
    remove.add_argument("users", nargs="+", metavar="USER", help="id or name")
    remove.set_defaults(func=_run(_user_delete))
    change = user.add_parser(
        "set",
        help=f"set a new password (from {USER_PASSWORD_ENV}, --password-stdin or a prompt); "
        "revokes the user's tokens",
    )
    change.add_argument("user", help="id or name")
    change.add_argument("--password-stdin", action="store_true")
    change.set_defaults(func=_run(_user_set), no_password=False)

    role = sub.add_parser("role", help="role assignments").add_subparsers(
        dest="role_command", required=True
    )
    for action in ("add", "remove"):
        cmd = role.add_parser(action)
        cmd.add_argument("--user", required=True)
        cmd.add_argument("--project", required=True)
        cmd.add_argument("--role", required=True, choices=ROLE_NAMES)
        cmd.set_defaults(func=_run(_role))
    listing = role.add_parser("list", help=f"role assignments (roles: {', '.join(ROLE_NAMES)})")
    listing.add_argument("--user", help="only this user's (id or name)")
    listing.add_argument("--project", help="only on this project (id or name)")
    listing.add_argument("--role", choices=ROLE_NAMES)
    add_format_option(listing)
    listing.set_defaults(func=_run(_role_list))

    token = sub.add_parser("token", help="tokens").add_subparsers(
        dest="token_command", required=True
    )
    issue = token.add_parser("issue", help="issue a (long-lived) token, e.g. for an agent")
    issue.add_argument("--user", required=True)
    issue.add_argument("--project", required=True)
    issue.add_argument("--ttl", type=int, default=None, help="seconds; default token_ttl_seconds")
    issue.add_argument(
        "--kind",
        choices=("agent", "token"),
        default="agent",
        help="agent tokens may only post agent reports, whatever their roles",
    )
    issue.set_defaults(func=_run(_token_issue))

    policy = sub.add_parser("policy", help="authorization rules").add_subparsers(
        dest="policy_command", required=True
    )
    show = policy.add_parser("show", help="print every rule in force (defaults + policy_file)")
    show.set_defaults(func=_run(_policy_show))
