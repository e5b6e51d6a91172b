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

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from migration_ops.settings import SQL_DIR


def connect(
    dsn: str, *, application_name: str = "migration", autocommit: bool = False
) -> AbstractContextManager[psycopg.Connection[Any]]:
    """A connection tagged with ``application_name`` so it shows in ``pg_stat_activity``.

    Use it in a ``with`` block: it commits on success and rolls back on an error, like a
    psycopg connection. Inside :func:`reusing_connections` the block takes an idle session of
    the scope instead of opening one; otherwise the connection is opened and closed.
    """
    scope = _scope.get()
    if scope is None:
        return psycopg.connect(dsn, autocommit=autocommit, application_name=application_name)
    return scope.lease(dsn, application_name=application_name, autocommit=autocommit)


class _Scope:
    """Idle target sessions of one :func:`reusing_connections` block, by DSN."""

    def __init__(self) -> None:
        self.idle: dict[str, list[psycopg.Connection[Any]]] = {}

    @contextmanager
    def lease(
        self, dsn: str, *, application_name: str, autocommit: bool
    ) -> Iterator[psycopg.Connection[Any]]:
        idle = self.idle.setdefault(dsn, [])
        conn = idle.pop() if idle else psycopg.connect(dsn, autocommit=True)
        conn.execute("select set_config('application_name', %s, false)", (application_name,))
        conn.autocommit = autocommit
        try:
            yield conn
            if not autocommit:
                conn.commit()
        except BaseException:
            conn.close()  # rolls back whatever the block left open
            raise
        self._give_back(dsn, conn)

    def _give_back(self, dsn: str, conn: psycopg.Connection[Any]) -> None:
        """Reset the session (settings, temporary tables, session locks) and keep it.

        Not ``DISCARD ALL``: it would also drop the statements psycopg prepared, which psycopg
        still believes exist; they are harmless to keep.
        """
        if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()
            return
        conn.autocommit = True
        conn.execute("reset all; discard temp; discard sequences; select pg_advisory_unlock_all()")
        self.idle[dsn].append(conn)

    def close(self) -> None:
        for sessions in self.idle.values():
            for conn in sessions:
                conn.close()
        self.idle.clear()


_scope: ContextVar[_Scope | None] = ContextVar("migration_connection_scope", default=None)


@contextmanager
def reusing_connections() -> Iterator[None]:
    """Let every :func:`connect` of the block (this thread) reuse the block's idle sessions.

    A step opens a session for its guard, its work and its bookkeeping; over the 18 entities
    of a quiet sync that was ~380 connections and a second of set-up. Sessions are reset
    (``RESET ALL``, ``DISCARD TEMP``) between uses and all closed when the block ends, so
    nothing outlives the step (a database can still be dropped or copied after it). Nested
    blocks share the outer one; threads started inside do not inherit it and connect as usual.
    """
    if _scope.get() is not None:
        yield
        return
    scope = _Scope()
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)
        scope.close()


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


def table_columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """Column names of ``schema.table`` in table order; ``[]`` when it does not exist.

    From ``pg_attribute``: ``information_schema.columns`` answers the same after checking
    privileges column by column, ~2 ms a call, and a quiet sync asks ~150 times.
    """
    rows = conn.execute(
        "select attname from pg_catalog.pg_attribute "
        "where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped order by attnum",
        (table,),
    ).fetchall()
    return [str(row[0]) for row in rows]


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
