"""Compare legacy with what the sync already knows bucket by bucket, then read only what differs.

A quiet night must not stream a million ids or hashes to find that nothing changed. Legacy
ids are grouped in buckets (``id >> BUCKET_BITS``: 64 consecutive ids); per bucket the legacy
side sends one line, ``(bucket, rows, bit_xor of the rows' 64-bit hashes)``, computed inside
the sync's snapshot, and the target computes the same over what it knows. Only the buckets
whose line differs are then read row by row (ids and hashes, never values): the checksum and
drill-down of table comparison tools (pt-table-checksum), applied to two questions:

* **content** (:func:`differing_row_buckets`): which rows of a table without timestamps
  changed since the hashes the last sync stored (``migration.sync_row_hashes``);
* **presence** (:func:`checked_id_buckets`): which primary legacy ids the target does not
  account for (deletes and rows that came back), against the target's own rows and the
  entity's open quarantine, so no state is needed.

Both sides are sets (unique ids), so ``bit_xor`` cannot cancel a row against itself; two
different buckets share count and fingerprint by chance about once in 1.8e19. Decision 0007.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec, SourceTable
from migration_ops.db import qualified, read_sql
from migration_ops.extract import pass_through
from migration_ops.settings import LEGACY_SCHEMA

#: Ids per bucket = 2**BUCKET_BITS. Small enough that ~1 % of rows changed at random leaves
#: about half the buckets alike; large enough that a million ids are 15,625 lines.
BUCKET_BITS = 6

#: The sync's staging work tables that hold buckets, per entity (created by the detector).
WORK_TABLES = (
    ("sync_buckets", "source_table text, bucket bigint, rows bigint, fingerprint bigint"),
    ("sync_differing", "source_table text, bucket bigint"),
    ("sync_id_buckets", "bucket bigint, rows bigint, fingerprint bigint"),
    ("sync_checked", "bucket bigint"),
)


def work_table(entity: EntitySpec, suffix: str) -> sql.Identifier:
    """``staging.<entity>__<suffix>``: one of the sync's work tables of the entity."""
    return qualified(entity.staging_table(suffix))


def stream(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    query: sql.Composable,
    params: Any,
    into: sql.Composable,
) -> None:
    """COPY the result of a legacy query into a staging table (text format: casts are exact)."""
    with (
        source.cursor().copy(sql.SQL("copy ({}) to stdout").format(query), params) as outgoing,
        target.cursor().copy(sql.SQL("copy {} from stdin").format(into)) as incoming,
    ):
        pass_through(outgoing, incoming)


def primary_array(table: SourceTable) -> sql.Composable:
    """``array[p1, p2]::bigint[]`` of the columns naming the entity rows a row belongs to."""
    return sql.SQL("array[{}]::bigint[]").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_columns)
    )


def _hashed(table: SourceTable) -> sql.Composable:
    """What a row's hash covers: its copied columns and the entity rows it belongs to."""
    return sql.SQL(", ").join([*(sql.Identifier(c) for c in table.columns), primary_array(table)])


def _buckets(target: psycopg.Connection[Any], query: sql.Composable, params: Any) -> list[int]:
    row = target.execute(
        sql.SQL("select coalesce(array_agg(bucket order by bucket), '{{}}') from ({}) as b").format(
            query
        ),
        params,
    ).fetchone()
    return list(row[0]) if row else []


def differing_row_buckets(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    entity: EntitySpec,
    table: SourceTable,
) -> list[int]:
    """Stage the table's bucket fingerprints and return the buckets that differ from the state.

    A bucket differs when legacy has rows the stored hashes do not (new, changed) or the
    stored hashes have rows legacy does not (deleted); with no stored state every bucket does.
    """
    legacy = sql.Identifier(LEGACY_SCHEMA, table.table)
    buckets = work_table(entity, "sync_buckets")
    query = sql.SQL(read_sql("sync/legacy_row_buckets.sql")).format(
        legacy=legacy, hashed=_hashed(table)
    )
    stream(
        source,
        target,
        sql.SQL("select %(table)s, b.* from ({}) as b").format(query),
        {"table": table.table, "bits": BUCKET_BITS},
        buckets,
    )
    differing = work_table(entity, "sync_differing")
    params = {"entity": entity.name, "table": table.table, "bits": BUCKET_BITS}
    target.execute(
        sql.SQL(read_sql("sync/stored_row_buckets.sql")).format(
            differing=differing, buckets=buckets
        ),
        params,
    )
    target.execute(sql.SQL("analyze {}").format(differing))
    return _buckets(
        target,
        sql.SQL("select bucket from {} where source_table = %(table)s").format(differing),
        params,
    )


def stream_row_hashes(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    entity: EntitySpec,
    table: SourceTable,
    buckets: list[int],
) -> None:
    """Stream ``(table, id, hash, entity rows)`` of the rows in ``buckets`` into sync_hashes."""
    if not buckets:
        return
    query = sql.SQL(read_sql("sync/legacy_row_hashes.sql")).format(
        legacy=sql.Identifier(LEGACY_SCHEMA, table.table),
        hashed=_hashed(table),
        primary_ids=primary_array(table),
    )
    params = {"table": table.table, "bits": BUCKET_BITS, "buckets": buckets}
    stream(source, target, query, params, work_table(entity, "sync_hashes"))


def checked_id_buckets(
    source: psycopg.Connection[Any], target: psycopg.Connection[Any], entity: EntitySpec
) -> list[int]:
    """Stage the primary table's id-bucket fingerprints; return those the target disagrees with."""
    id_buckets = work_table(entity, "sync_id_buckets")
    stream(
        source,
        target,
        sql.SQL(read_sql("sync/legacy_id_buckets.sql")).format(
            legacy=sql.Identifier(LEGACY_SCHEMA, entity.primary_source.table)
        ),
        {"bits": BUCKET_BITS},
        id_buckets,
    )
    checked = work_table(entity, "sync_checked")
    target.execute(
        sql.SQL(read_sql("sync/present_buckets.sql")).format(
            checked=checked,
            id_buckets=id_buckets,
            target=qualified(entity.target_table),
            key=sql.Identifier(entity.key),
        ),
        {"entity": entity.name, "bits": BUCKET_BITS},
    )
    target.execute(sql.SQL("analyze {}").format(checked))
    return _buckets(target, sql.SQL("select bucket from {}").format(checked), None)


def stream_present_ids(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    entity: EntitySpec,
    buckets: list[int],
) -> None:
    """Stream the primary ids legacy has in ``buckets`` into sync_present (ids only)."""
    if not buckets:
        return
    stream(
        source,
        target,
        sql.SQL("select id from {} where (id::bigint >> %(bits)s) = any(%(buckets)s)").format(
            sql.Identifier(LEGACY_SCHEMA, entity.primary_source.table)
        ),
        {"bits": BUCKET_BITS, "buckets": buckets},
        work_table(entity, "sync_present"),
    )
