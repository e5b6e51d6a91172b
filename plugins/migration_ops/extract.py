"""Extract step: stream an entity's legacy tables into staging with binary COPY.

The legacy side is only ever read, in a READ ONLY, REPEATABLE READ transaction, so all the
tables of one entity come from one consistent snapshot. Rows pass through this process as
opaque COPY chunks (constant memory, no per-row Python work) into UNLOGGED staging tables
whose column types are copied from the legacy catalog, which keeps binary COPY exact.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec, SourceTable
from migration_ops.db import connect, connect_legacy, qualified, scalar
from migration_ops.errors import SchemaDriftError
from migration_ops.settings import LEGACY_SCHEMA


def legacy_column_types(
    conn: psycopg.Connection[Any], entity: str, source: SourceTable
) -> list[tuple[str, str]]:
    """Return ``(column, SQL type)`` for the source's columns, in spec order.

    Raises:
        SchemaDriftError: the table or one of the columns is missing on the legacy side.
    """
    rows = conn.execute(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod)
        from pg_catalog.pg_attribute as a
        join pg_catalog.pg_class as c on c.oid = a.attrelid
        join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
        """,
        (LEGACY_SCHEMA, source.table),
    ).fetchall()
    found = dict(rows)
    if not found:
        raise SchemaDriftError(
            entity, f"legacy table {source.table} does not exist", rule="schema.table_present"
        )
    missing = [column for column in source.columns if column not in found]
    if missing:
        raise SchemaDriftError(
            entity,
            f"legacy table {source.table} lacks columns {missing}",
            rule="schema.columns_present",
        )
    return [(column, found[column]) for column in source.columns]


def extract_entity(legacy_dsn: str, target_dsn: str, entity: EntitySpec) -> dict[str, int]:
    """Copy every source table of ``entity`` into ``staging.<entity>__<table>``.

    Rerunnable: each staging table is dropped and recreated inside the target transaction,
    so a killed and retried extract leaves either the old complete copy or the new one.

    Returns:
        Rows copied per legacy table.
    """
    counts: dict[str, int] = {}
    with (
        connect_legacy(
            legacy_dsn, application_name=f"migration:extract:{entity.name}"
        ) as source_conn,
        connect(target_dsn, application_name=f"migration:extract:{entity.name}") as target_conn,
    ):
        target_conn.execute("create schema if not exists staging")
        for source in entity.sources:
            columns = legacy_column_types(source_conn, entity.name, source)
            staging = qualified(entity.staging_table(source.table))
            target_conn.execute(sql.SQL("drop table if exists {}").format(staging))
            target_conn.execute(
                sql.SQL("create unlogged table {} ({})").format(
                    staging,
                    sql.SQL(", ").join(
                        # The type text comes from the legacy catalog (format_type), not from data.
                        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))
                        for name, pg_type in columns
                    ),
                )
            )
            column_list = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
            copy_out = sql.SQL("copy (select {} from {}) to stdout (format binary)").format(
                column_list, sql.Identifier(LEGACY_SCHEMA, source.table)
            )
            copy_in = sql.SQL("copy {} ({}) from stdin (format binary)").format(
                staging, column_list
            )
            with (
                source_conn.cursor() as reader,
                target_conn.cursor() as writer,
                reader.copy(copy_out) as outgoing,
                writer.copy(copy_in) as incoming,
            ):
                for chunk in outgoing:
                    incoming.write(chunk)
            # COPY FROM reports no row count for binary input: count what actually landed.
            counts[source.table] = int(
                scalar(target_conn, sql.SQL("select count(*) from {}").format(staging))
            )
            target_conn.execute(sql.SQL("analyze {}").format(staging))
    return counts
