"""Transform step: build an entity's target-shaped rows in staging with set-based SQL.

The transform SQL of an entity (``include/sql/transform/<entity>.sql``) reads the staged
legacy rows (``staging.<entity>__<legacy table>``) and the code maps it declares, and
creates ``staging.<entity>__transformed``: one row per primary source row, with the
target's column names and types. Rows that break a rule are *kept*, carrying the value
that breaks it, so the validation step can name the rule and quarantine them.

Two declarative extras of a spec join the same transaction: generic relations are rendered
as temporary tables before the SQL runs (:mod:`migration_ops.generic_relations`), and
free-text columns are repaired after it (:func:`repair_text_columns`): candidates are
selected in SQL, only those rows are streamed through the pure repair rule in batches and
written back with COPY, so text repair never holds a table in memory.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from include.transforms.reference import REFERENCE_TABLES, ReferenceTable
from include.transforms.text_repair import MOJIBAKE_CANDIDATE_PATTERN, repair_batch
from migration_ops import generic_relations
from migration_ops.db import connect, qualified, run_sql_file, scalar
from migration_ops.progress import started

log = logging.getLogger(__name__)

#: Rows of candidate text fetched from the server-side cursor and repaired per batch.
TEXT_REPAIR_BATCH = 5_000


def create_reference_table(conn: psycopg.Connection[Any], table: ReferenceTable) -> None:
    """Create one code map as a temporary table, dropped at the end of the transaction."""
    columns = sql.SQL(", ").join(
        # The type text comes from the code map's definition, not from data.
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(pg_type))
        for column, pg_type in table.columns
    )
    conn.execute(
        sql.SQL("create temporary table {} ({}) on commit drop").format(
            sql.Identifier(table.name), columns
        )
    )
    with conn.cursor().copy(
        sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier(table.name),
            sql.SQL(", ").join(sql.Identifier(column) for column, _ in table.columns),
        )
    ) as copy:
        for row in table.rows:
            copy.write_row(row)


def create_reference_tables(conn: psycopg.Connection[Any], names: tuple[str, ...]) -> None:
    """Create the named code maps as temporary tables, dropped at the end of the transaction."""
    for name in names:
        create_reference_table(conn, REFERENCE_TABLES[name])


def repair_text_columns(conn: psycopg.Connection[Any], entity: EntitySpec) -> int:
    """Apply the mojibake rule to the spec's text columns of ``__transformed``; return rows changed.

    Candidates (text matching the rule's pattern, bound as a parameter) are read through a
    server-side cursor in batches; the rows the rule changes go to
    ``staging.<entity>__text_repair`` with COPY, then one UPDATE per column writes the
    repaired text and keeps the original under the column's ``metadata`` key. Rerunnable:
    the side table is rebuilt and the transformed table is recreated by the transform SQL.
    """
    transformed = qualified(entity.staging_table("transformed"))
    side = qualified(entity.staging_table("text_repair"))
    key = sql.Identifier(entity.key)
    conn.execute(sql.SQL("drop table if exists {}").format(side))
    conn.execute(
        sql.SQL(
            "create unlogged table {} (legacy_id bigint, column_name text, repaired text)"
        ).format(side)
    )
    changed = 0
    for repair in entity.text_repair:
        column = sql.Identifier(repair.column)
        with conn.cursor(name=f"text_repair_{repair.column}") as candidates:
            candidates.execute(
                sql.SQL("select {key}, {column} from {transformed} where {column} ~ %s").format(
                    key=key, column=column, transformed=transformed
                ),
                (MOJIBAKE_CANDIDATE_PATTERN,),
            )
            while batch := candidates.fetchmany(TEXT_REPAIR_BATCH):
                repaired = repair_batch(batch)
                with conn.cursor().copy(sql.SQL("copy {} from stdin").format(side)) as copy:
                    for legacy_id, text in repaired:
                        copy.write_row((legacy_id, repair.column, text))
        updated = conn.execute(
            sql.SQL(
                """
                update {transformed} as t
                set {column} = r.repaired,
                    metadata = t.metadata || jsonb_build_object(%s::text, t.{column})
                from {side} as r
                where r.legacy_id = t.{key} and r.column_name = %s
                """
            ).format(transformed=transformed, column=column, side=side, key=key),
            (repair.metadata_key, repair.column),
        )
        changed += updated.rowcount
    return changed


def run_transform(target_dsn: str, entity: EntitySpec, run_settings: dict[str, object]) -> int:
    """Rebuild ``staging.<entity>__transformed`` in one transaction; return its row count.

    Rerunnable: the SQL drops and recreates its output table, so a retried task starts clean.
    One set-based statement: its start, then the rows built and rows/s, are logged.
    """
    progress = started(f"transform {entity.name}")
    with connect(target_dsn, application_name=f"migration:transform:{entity.name}") as conn:
        create_reference_tables(conn, entity.reference_tables)
        if entity.generic_relations:
            create_reference_table(conn, generic_relations.reference_table(entity))
            generic_relations.create_targets(conn, entity)
        run_sql_file(conn, entity.transform_sql, settings=run_settings)
        if entity.text_repair:
            repaired = repair_text_columns(conn, entity)
            log.info("%s: mis-encoded text repaired in %d rows", entity.name, repaired)
        count = scalar(
            conn,
            sql.SQL("select count(*) from {}").format(
                qualified(entity.staging_table("transformed"))
            ),
        )
    progress.finish(int(count))
    return int(count)
