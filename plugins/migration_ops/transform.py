"""Transform step: build an entity's target-shaped rows in staging with set-based SQL.

The transform SQL of an entity (``include/sql/transform/<entity>.sql``) reads the staged
legacy rows (``staging.<entity>__<legacy table>``) and the code maps it declares, and
creates ``staging.<entity>__transformed``: one row per primary source row, with the
target's column names and types. Rows that break a rule are *kept*, carrying the value
that breaks it, so the validation step can name the rule and quarantine them.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from include.transforms.reference import REFERENCE_TABLES
from migration_ops.db import connect, qualified, run_sql_file, scalar


def create_reference_tables(conn: psycopg.Connection[Any], names: tuple[str, ...]) -> None:
    """Create the named code maps as temporary tables, dropped at the end of the transaction."""
    for name in names:
        table = REFERENCE_TABLES[name]
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(pg_type))  # type from code, not data
            for column, pg_type in table.columns
        )
        conn.execute(
            sql.SQL("create temporary table {} ({}) on commit drop").format(sql.Identifier(name), columns)
        )
        with conn.cursor().copy(
            sql.SQL("copy {} ({}) from stdin").format(
                sql.Identifier(name),
                sql.SQL(", ").join(sql.Identifier(column) for column, _ in table.columns),
            )
        ) as copy:
            for row in table.rows:
                copy.write_row(row)


def run_transform(target_dsn: str, entity: EntitySpec, run_settings: dict[str, object]) -> int:
    """Rebuild ``staging.<entity>__transformed`` in one transaction; return its row count.

    Rerunnable: the SQL drops and recreates its output table, so a retried task starts clean.
    """
    with connect(target_dsn, application_name=f"migration:transform:{entity.name}") as conn:
        create_reference_tables(conn, entity.reference_tables)
        run_sql_file(conn, entity.transform_sql, settings=run_settings)
        count = scalar(
            conn,
            sql.SQL("select count(*) from {}").format(qualified(entity.staging_table("transformed"))),
        )
    return int(count)
