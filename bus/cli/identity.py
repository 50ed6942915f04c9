"""``demat users|tokens|sessions|serve``: local users, their API tokens, people's
sessions after an OpenID Connect login, and the HTTP API."""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
from datetime import timedelta

from rich.table import Table

from bus.api.app import create_app
from bus.cli.console import console, fail, out, shown
from bus.identity import ROLES, IdentityError, IdentityStore, parse_date
from bus.runtime import Runtime
from bus.sessions import SessionStore
from bus.settings import get_settings

M_ARENA_MAX = -8  # glibc's mallopt parameter
KEEP_ALIVE_S = 75


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="serve the HTTP API (FastAPI)")
    s.add_argument("--host", help="default DEMAT_API_HOST or 127.0.0.1")
    s.add_argument("--port", type=int, help="default DEMAT_API_PORT or 8080")
    s.add_argument("--workers", type=int, help="processes serving the port (default "
                   "DEMAT_API_WORKERS or 1); each keeps its own rate limits and cache")
    s.set_defaults(func=cmd_serve)

    users = sub.add_parser("users", help="local users and their roles per tenant")
    cmds = users.add_subparsers(metavar="ACTION", required=True)
    s = cmds.add_parser("add", help="create a user or grant it one more role on a tenant")
    s.add_argument("login")
    s.add_argument("--tenant", required=True, help="SIREN (roles reach the tenants below it)")
    s.add_argument("--role", required=True, choices=sorted(ROLES))
    s.set_defaults(func=cmd_users_add)
    s = cmds.add_parser("list", help="every user with its roles")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_users_list)

    tokens = sub.add_parser("tokens", help="API tokens (secret shown once, stored hashed)")
    cmds = tokens.add_subparsers(metavar="ACTION", required=True)
    s = cmds.add_parser("create", help="a new token of a user; prints its secret once")
    s.add_argument("login")
    s.add_argument("--name", default="")
    s.add_argument("--expires", help="ISO date or datetime (UTC when naive)")
    s.add_argument("--tenant", action="append", help="only these tenants (default: all of "
                   "the user's)")
    s.add_argument("--role", action="append", choices=sorted(ROLES),
                   help="only these roles (default: all of the user's)")
    s.set_defaults(func=cmd_tokens_create)
    s = cmds.add_parser("revoke", help="revoke a token by id")
    s.add_argument("id")
    s.set_defaults(func=cmd_tokens_revoke)
    s = cmds.add_parser("list", help="tokens (never their secrets)")
    s.add_argument("--login")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_tokens_list)

    sessions = sub.add_parser("sessions", help="people's open sessions (OpenID Connect)")
    cmds = sessions.add_subparsers(metavar="ACTION", required=True)
    s = cmds.add_parser("list", help="open sessions (never their secrets)")
    s.add_argument("--login")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sessions_list)
    s = cmds.add_parser("end", help="end one session, or every session of a login")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("ref", nargs="?", help="the session's reference (session:…)")
    which.add_argument("--login", help="every session of this login")
    s.set_defaults(func=cmd_sessions_end)


def _sessions() -> SessionStore:
    settings = get_settings()
    return SessionStore(Runtime(settings).store,
                        timedelta(minutes=settings.oidc_session_minutes))


def _ids() -> IdentityStore:
    runtime = Runtime()
    return IdentityStore.of(runtime)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # lazy: the other commands do not need the server

    settings = get_settings()
    host, port = args.host or settings.api_host, args.port or settings.api_port
    workers = args.workers or settings.api_workers
    if workers < 1:
        return fail("--workers: at least 1")
    limit_malloc_arenas()
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")  # the same in worker processes
    logging.basicConfig(level=logging.WARNING,  # the security log of refused requests
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    out.print(f"demat API on http://{host}:{port} (docs at /docs)"
              + (f", {workers} processes" if workers > 1 else ""))
    # idle keep-alive connections are closed after KEEP_ALIVE_S, longer than clients and
    # load balancers keep theirs (httpx 5 s, most balancers 60 s): a server closing first
    # races the client's next request on that connection, which then fails unsent
    common = {"host": host, "port": port, "log_level": "warning", "server_header": False,
              "timeout_keep_alive": KEEP_ALIVE_S}
    if workers == 1:
        uvicorn.run(create_app(settings), **common)
    else:  # each worker process builds the app from the same environment
        uvicorn.run("bus.api.app:create_app", factory=True, workers=workers, **common)
    return 0


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most ``arenas`` glibc malloc arenas: each thread handing a chunk of a large
    upload to the store would otherwise keep its own arena's freed buffers (RSS grows
    by tens of MB with nothing in use). No-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass


def cmd_users_add(args: argparse.Namespace) -> int:
    try:
        user = _ids().add_user(args.login, args.tenant, args.role)
    except IdentityError as exc:
        return fail(str(exc))
    roles = ", ".join(f"{t}: {'/'.join(r)}" for t, r in sorted(user["roles"].items()))
    out.print(f"user {shown(user['login'])}: {shown(roles)}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    users = _ids().users()
    if args.json:
        out.print_json(json.dumps(users))
        return 0
    table = Table("login", "tenant", "roles", "created")
    for u in users:
        for tenant, roles in sorted(u["roles"].items()):
            table.add_row(shown(u["login"]), shown(tenant), shown(", ".join(roles)),
                          shown(u["created_at"]))
    out.print(table)
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    try:
        expires = parse_date(args.expires) if args.expires else None
        secret, record = _ids().create_token(args.login, name=args.name, expires=expires,
                                             tenants=args.tenant, roles=args.role)
    except IdentityError as exc:
        return fail(str(exc))
    print(secret)  # alone on stdout, for scripts: DEMAT_TOKEN=$(demat tokens create ...)
    until = record["expires_at"] or "never"
    console.print(f"[dim]token {record['id']} of {args.login}, expires {until}: the secret "
                  "above is shown only once[/]")
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    try:
        record = _ids().revoke(args.id)
    except IdentityError as exc:
        return fail(str(exc))
    out.print(f"token {shown(record['id'])} of {shown(record['login'])} revoked at "
              f"{shown(record['revoked_at'])}")
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    tokens = _ids().tokens(args.login)
    if args.json:
        out.print_json(json.dumps(tokens))
        return 0
    table = Table("id", "login", "name", "created", "expires", "revoked")
    for t in tokens:
        table.add_row(*(shown(t[k]) for k in ("id", "login", "name", "created_at",
                                               "expires_at", "revoked_at")))
    out.print(table)
    return 0


def cmd_sessions_list(args: argparse.Namespace) -> int:
    sessions = _sessions().open_sessions(args.login)
    if args.json:
        out.print_json(json.dumps(sessions))
        return 0
    table = Table("ref", "login", "issuer", "created", "expires")
    for r in sessions:
        table.add_row(r["ref"], r["login"], r.get("iss") or "", r["created_at"],
                      r["expires_at"])
    out.print(table)
    return 0


def cmd_sessions_end(args: argparse.Namespace) -> int:
    ended = _sessions().end(ref=args.ref, login=args.login)
    if not ended:
        return fail(f"no open session {args.ref}" if args.ref
                    else f"{args.login} has no open session")
    for r in ended:
        out.print(f"session {r['ref']} of {r['login']} ended")
    return 0
