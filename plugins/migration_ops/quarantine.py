"""Quarantine decisions of one run: staged while the entity is checked, recorded with its load.

Validation and the object copy decide which rows to hold back; they write those decisions to
``staging.<entity>__quarantine`` (ids, rule, value-free detail) and rebuild
``staging.<entity>__validated`` without them. ``migration.quarantine``, the auditors' history,
changes only inside the load's transaction (:func:`record`): a load blocked by the quarantine
limit, a failed suite or a killed task leaves that history exactly as it was, and a loaded
entity's history always matches what was loaded.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops.db import connect, qualified, read_sql, scalar, set_run_settings


def staged_table(entity: EntitySpec) -> sql.Identifier:
    """``staging.<entity>__quarantine``: this run's decisions for the entity."""
    return qualified(entity.staging_table("quarantine"))


def reset(conn: psycopg.Connection[Any], entity: EntitySpec) -> None:
    """Start the entity's decisions afresh (a retried validate begins from nothing)."""
    conn.execute(sql.SQL("drop table if exists {}").format(staged_table(entity)))
    _ensure(conn, entity)


def _ensure(conn: psycopg.Connection[Any], entity: EntitySpec) -> None:
    conn.execute(
        sql.SQL(
            "create unlogged table if not exists {} (legacy_id bigint not null, "
            "rule text not null, detail text not null, primary key (legacy_id, rule))"
        ).format(staged_table(entity))
    )


def hold_back(
    conn: psycopg.Connection[Any],
    entity: EntitySpec,
    *,
    rule: str,
    detail: str,
    failing_rows: sql.Composable,
) -> None:
    """Stage the rows ``failing_rows`` selects (a query returning the entity's key column).

    Set-based: no row passes through Python however many fail. ``detail`` names the rule and
    column, never a value.
    """
    _ensure(conn, entity)
    conn.execute(
        sql.SQL(
            """
            insert into {table} (legacy_id, rule, detail)
            select distinct failing.{key}::bigint, %s, %s from ({failing_rows}) as failing
            on conflict (legacy_id, rule) do nothing
            """
        ).format(
            table=staged_table(entity), key=sql.Identifier(entity.key), failing_rows=failing_rows
        ),
        (rule, detail),
    )


def rebuild_validated(target_dsn: str, entity: EntitySpec) -> tuple[int, int]:
    """Recreate ``__validated`` = transformed rows minus the staged decisions.

    Returns:
        (rows held back, rows validated).
    """
    transformed = qualified(entity.staging_table("transformed"))
    validated = qualified(entity.staging_table("validated"))
    with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
        _ensure(conn, entity)
        conn.execute(sql.SQL("drop table if exists {}").format(validated))
        conn.execute(
            sql.SQL(
                """
                create unlogged table {validated} as
                select t.* from {transformed} as t
                where not exists (select 1 from {held} as q where q.legacy_id = t.{key})
                """
            ).format(
                validated=validated,
                transformed=transformed,
                held=staged_table(entity),
                key=sql.Identifier(entity.key),
            )
        )
        held = scalar(
            conn, sql.SQL("select count(distinct legacy_id) from {}").format(staged_table(entity))
        )
        validated_rows = scalar(conn, sql.SQL("select count(*) from {}").format(validated))
    return int(held), int(validated_rows)


def record(
    conn: psycopg.Connection[Any],
    entity: EntitySpec,
    run_id: str,
    *,
    evaluated: sql.Composable | None = None,
) -> None:
    """Write the staged decisions into ``migration.quarantine``, in the load's transaction.

    See ``include/sql/load/quarantine_record.sql``: new rows are added, rows seen again are
    refreshed (never duplicated), rows this run no longer holds back are resolved: all of the
    entity's open rows after a full run, only the ``evaluated`` legacy ids (a query) after a
    sync, whose delta says nothing about the rows it did not read.
    """
    _ensure(conn, entity)
    set_run_settings(
        conn,
        {"entity": entity.name, "run_id": run_id, "resolve_all": "off" if evaluated else "on"},
    )
    conn.execute(
        sql.SQL(read_sql("load/quarantine_record.sql")).format(
            decisions=staged_table(entity),
            evaluated=evaluated if evaluated is not None else sql.SQL("select null::bigint"),
        )
    )
