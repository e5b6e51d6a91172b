"""Connections and SQL-file execution against PostgreSQL (psycopg 3).

SQL lives in ``include/sql``. Values reach it in one of two ways, never by string
formatting: as bound parameters (single-statement files), or as transaction-local
settings read with ``current_setting('migration.<name>')`` (multi-statement files).
Identifiers (table and column names from the entity specs) are composed with
:mod:`psycopg.sql`, which quotes them.

The legacy database is only ever read. :func:`legacy_conninfo` and :func:`connect_legacy` are
the one way this project addresses it, so the guarantee lives in one place and a test can hold
every legacy session to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from migration_ops.settings import SQL_DIR


def connect(
    dsn: str, *, application_name: str = "migration", autocommit: bool = False
) -> psycopg.Connection[Any]:
    """Open a connection tagged with ``application_name`` so it shows in ``pg_stat_activity``."""
    return psycopg.connect(dsn, autocommit=autocommit, application_name=application_name)


#: Added to the libpq ``options`` of every legacy session: the server starts each of its
#: transactions read-only, autocommit statements and client tools (``pg_dump``) included.
LEGACY_READ_ONLY_OPTION = "-c default_transaction_read_only=on"


def legacy_conninfo(dsn: str) -> str:
    """``dsn`` with ``default_transaction_read_only=on`` appended to its libpq ``options``.

    A server-side default rather than a client attribute: it also holds for autocommit
    statements and for ``pg_dump``, which take no ``read_only`` flag from psycopg. Options the
    connection already carries (``statement_timeout``, ...) are kept.
    """
    existing = str(conninfo_to_dict(dsn).get("options") or "")
    return make_conninfo(dsn, options=f"{existing} {LEGACY_READ_ONLY_OPTION}".strip())


def connect_legacy(dsn: str, *, application_name: str) -> psycopg.Connection[Any]:
    """Open a session on the legacy database that cannot write (SQLSTATE 25006 if it tries).

    Read-only twice over: by default (:func:`legacy_conninfo`) and per transaction. REPEATABLE
    READ, so every statement of a transaction reads the same snapshot: the tables of one
    extract, or the counts and the dump of one backup, cannot disagree with each other.
    """
    conn = psycopg.connect(legacy_conninfo(dsn), application_name=application_name)
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


@cache
def read_sql(relative_path: str) -> str:
    """Return the text of ``include/sql/<relative_path>``."""
    return (SQL_DIR / relative_path).read_text(encoding="utf-8")


def set_run_settings(conn: psycopg.Connection[Any], settings: Mapping[str, object]) -> None:
    """Expose values to the current transaction as ``current_setting('migration.<key>')``."""
    for key, value in settings.items():
        conn.execute(
            "select set_config(%s, %s, true)",
            (f"migration.{key}", "" if value is None else str(value)),
        )


def run_sql_file(
    conn: psycopg.Connection[Any],
    relative_path: str,
    settings: Mapping[str, object] | None = None,
) -> None:
    """Run a (possibly multi-statement) SQL file in the connection's current transaction.

    Args:
        conn: an open connection; the caller owns the transaction.
        relative_path: path under ``include/sql``.
        settings: values made visible as ``current_setting('migration.<key>')``.
    """
    if settings:
        set_run_settings(conn, settings)
    conn.execute(read_sql(relative_path))


def qualified(name: str) -> sql.Identifier:
    """``"schema.table"`` → a quoted, schema-qualified identifier."""
    return sql.Identifier(*name.split("."))


def scalar(conn: psycopg.Connection[Any], query: sql.Composable | str, params: Any = None) -> Any:
    """Run a query and return the first column of its first row (or ``None``)."""
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]


def column_parts(
    columns: list[str], conflict_key: str, assign_from: str
) -> dict[str, sql.Composable]:
    """The mapped columns as the load's SQL files name them (upsert, bulk path, changed rows).

    ``columns`` plain, ``source_columns`` as ``s.col`` (staged), ``target_columns`` as
    ``t.col`` (target): the one comparison every path makes; ``assignments`` set each column
    but the key from ``<assign_from>.col`` (``excluded`` for the upsert, ``s`` for an update).
    """
    ident = [sql.Identifier(c) for c in columns]
    return {
        "columns": sql.SQL(", ").join(ident),
        "source_columns": sql.SQL(", ").join(sql.SQL("s.{}").format(c) for c in ident),
        "target_columns": sql.SQL(", ").join(sql.SQL("t.{}").format(c) for c in ident),
        "assignments": sql.SQL(", ").join(
            sql.SQL("{0} = {1}.{0}").format(sql.Identifier(c), sql.Identifier(assign_from))
            for c in columns
            if c != conflict_key
        ),
    }
