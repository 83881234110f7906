"""A PostgreSQL server to restore into, reached through its command-line clients.

The restore side (pg_restore.py, drill.py) talks to the server only through `psql` and
`pg_restore` run as subprocesses, like the dump side: the same `command_prefix` (a
`docker exec -i ...`) works for both, and no driver is needed. Each query here must print
one value per row; results come back as text lines (`psql -At`).

Nothing reads the environment: the password reaches the children as PGPASSWORD only. The
backup side (postgres.py) reaches its server through the same class, so a command prefix, a
`run_as` user and the password travel the same way for pg_dump, psql and pg_restore.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from snapstore.errors import CommandFailed
from snapstore.sources.command import child_environment, client_prefix, run_command

MAINTENANCE_DB = "postgres"


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted: any database name is safe in a statement."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class PgConnection:
    """How to reach a server; `None` leaves the choice to libpq's defaults and environment."""

    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    command_prefix: Sequence[str] = field(default_factory=list)
    # Run the clients as this system user (peer authentication); see `client_prefix`.
    run_as: str | None = None
    psql: str = "psql"
    pg_restore: str = "pg_restore"
    pg_dump: str = "pg_dump"
    pg_dumpall: str = "pg_dumpall"
    # The children's base environment; None means they inherit this process's.
    env: Mapping[str, str] | None = None
    connect_timeout: int = 30
    # Where to connect for CREATE/DROP DATABASE and for applying globals.
    maintenance_db: str = MAINTENANCE_DB

    def connection_args(self) -> list[str]:
        args = []
        if self.host is not None:
            args.append(f"--host={self.host}")
        if self.port is not None:
            args.append(f"--port={self.port}")
        if self.username is not None:
            args.append(f"--username={self.username}")
        return args

    def prefix(self) -> list[str]:
        """What goes before each client program: the command prefix, the run-as user."""
        secret = ["PGPASSWORD"] if self.password is not None else []
        return client_prefix(self.command_prefix, self.run_as, secret)

    def command(self, program: str, *args: str) -> list[str]:
        return [*self.prefix(), program, *args]

    def describe(self) -> str:
        """Where the server is, for messages: never the password."""
        where = self.host or "local socket"
        if self.port is not None:
            where += f":{self.port}"
        user = f"{self.username}@" if self.username else ""
        return f"{user}{where}"

    def environment(self) -> dict[str, str] | None:
        extra = {"PGAPPNAME": "snapstore", "PGCONNECT_TIMEOUT": str(self.connect_timeout)}
        if self.password is not None:
            extra["PGPASSWORD"] = self.password
        return child_environment(self.env, extra)

    def psql_argv(self, dbname: str, *extra: str) -> list[str]:
        return self.command(
            self.psql, "-X", "-q", "-At", "-w", "-v", "ON_ERROR_STOP=1",
            *self.connection_args(), f"--dbname={dbname}", *extra,
        )  # fmt: skip

    def query(self, sql: str, dbname: str | None = None) -> list[str]:
        """Run SQL in `dbname` (default: the maintenance database); the output lines.

        A failure raises `DumpFailed` naming psql, with the tail of its stderr.
        """
        argv = self.psql_argv(dbname or self.maintenance_db, "-c", sql)
        output = run_command(argv, env=self.environment(), name="psql")
        return output.decode("utf-8", errors="replace").splitlines()

    def database_exists(self, dbname: str) -> bool:
        sql = f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(dbname)}"
        return self.query(sql) == ["1"]

    def user_relations(self, dbname: str) -> int:
        """Tables, views, sequences... outside the system schemas: 0 means empty."""
        sql = (
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
        )
        return int(self.query(sql, dbname)[0])

    def create_database(
        self, dbname: str, owner: str | None = None, template: str | None = None
    ) -> None:
        sql = f"CREATE DATABASE {quote_ident(dbname)}"
        if owner is not None:
            sql += f" OWNER {quote_ident(owner)}"
        if template is not None:
            sql += f" TEMPLATE {quote_ident(template)}"
        self.query(sql)

    def role_exists(self, role: str) -> bool:
        return self.query(f"SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(role)}") == ["1"]

    def database_owner(self, dbname: str) -> str | None:
        sql = (
            "SELECT pg_get_userbyid(datdba) FROM pg_database "
            f"WHERE datname = {quote_literal(dbname)}"
        )
        found = self.query(sql)
        return found[0] if found else None

    def set_role_password(self, role: str, password: str) -> None:
        """ALTER ROLE ... PASSWORD with a SCRAM verifier made here: the password itself
        never reaches the server's logs, and the statement goes through standard input,
        never a command line."""
        sql = f"ALTER ROLE {quote_ident(role)} PASSWORD {quote_literal(scram_verifier(password))};"
        argv = self.psql_argv(self.maintenance_db, "-f", "-")
        run_command(argv, env=self.environment(), name="psql", stdin=sql.encode())

    def can_log_in(self, dbname: str) -> str | None:
        """None when this connection logs in to `dbname`; else psql's error, in one line."""
        try:
            self.query("SELECT 1", dbname)
        except CommandFailed as exc:
            return str(exc)
        return None

    def drop_database(self, dbname: str) -> None:
        """Drop, ending other sessions first (PostgreSQL 13+ `WITH (FORCE)`)."""
        self.query(f"DROP DATABASE IF EXISTS {quote_ident(dbname)} WITH (FORCE)")


#: PostgreSQL's own iteration count for SCRAM-SHA-256 verifiers (scram_iterations).
SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677), as
    `psql`'s \\password makes it: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.

    The password is used as UTF-8 without SASLprep normalisation, which PostgreSQL also
    falls back to; for the ASCII passwords Mastodon's installer makes, they agree."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
