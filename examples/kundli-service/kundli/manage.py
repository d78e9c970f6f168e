"""Administration commands: python -m kundli.manage create-user|issue-token|schema.

create-user and issue-token print the new API token on stdout (once; only its hash is stored).
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg

from .auth import ROLES, hash_password, hash_token, new_token
from .db import schema_head
from .settings import Settings, SettingsError

ACTOR = "manage-cli"


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.database_url, connect_timeout=10)


def _stored(settings: Settings, token: str) -> str:
    return token if settings.faults.get("plaintext_tokens") else hash_token(token)


def _audit(conn, action: str, object_type: str, object_id, settings: Settings) -> None:
    if not settings.faults.get("no_audit"):
        conn.execute("INSERT INTO audit_log (actor, action, object_type, object_id) VALUES (%s, %s, %s, %s)",
                     (ACTOR, action, object_type, str(object_id)))


def create_user(settings: Settings, username: str, role: str, password: str | None) -> str:
    token = new_token()
    with _connect(settings) as conn:
        row = conn.execute("INSERT INTO users (username, role, password_hash) VALUES (%s, %s, %s) "
                           "ON CONFLICT (username) DO NOTHING RETURNING id",
                           (username, role, hash_password(password) if password else None)).fetchone()
        if row is None:
            raise SystemExit(f"create-user: USERNAME_TAKEN: {username!r} exists (use issue-token)")
        conn.execute("INSERT INTO api_tokens (user_id, token_hash) VALUES (%s, %s)", (row[0], _stored(settings, token)))
        _audit(conn, "user.create", "user", row[0], settings)
    return token


def issue_token(settings: Settings, username: str) -> str:
    token = new_token()
    with _connect(settings) as conn:
        row = conn.execute("SELECT id FROM users WHERE username = %s", (username,)).fetchone()
        if row is None:
            raise SystemExit(f"issue-token: no user {username!r}")
        conn.execute("INSERT INTO api_tokens (user_id, token_hash) VALUES (%s, %s)", (row[0], _stored(settings, token)))
        _audit(conn, "token.issue", "user", row[0], settings)
    return token


def schema(settings: Settings) -> str:
    with _connect(settings) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    current = row[0] if row else "none"
    return f"revision={current} head={schema_head()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kundli.manage")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="create a user and print an API token")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--password-env", help="environment variable holding the user's password")
    issue = sub.add_parser("issue-token", help="print a new API token for an existing user")
    issue.add_argument("--username", required=True)
    sub.add_parser("schema", help="print the database's schema revision and the code's head")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "create-user":
        password = os.environ.get(args.password_env) if args.password_env else None
        print(create_user(settings, args.username, args.role, password))
    elif args.command == "issue-token":
        print(issue_token(settings, args.username))
    else:
        print(schema(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
