"""The sync's side of an entity's load: state, removals, in the load's own transaction.

What :mod:`migration_ops.sync.detect` staged next to the delta (new cursors, current
hashes, the ids legacy still has) is recorded only here, inside the load, so the sync state
never describes rows that did not load: a sync killed anywhere before the commit leaves the
state of the last successful load, and the rerun reads the same delta again.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops.db import qualified, read_sql, set_run_settings
from migration_ops.sync.buckets import BUCKET_BITS, work_table


def touched(entity: EntitySpec) -> sql.Composable:
    """The entity rows this sync evaluated: the only quarantine entries it may resolve."""
    return sql.SQL("select primary_id from {}").format(work_table(entity, "sync_touched"))


def record(conn: psycopg.Connection[Any], entity: EntitySpec, run_id: str, snapshot_at: Any) -> int:
    """Advance the entity's cursors and hashes and mark rows gone from legacy.

    Returns:
        Target rows newly marked ``legacy_removed_at``.
    """
    set_run_settings(
        conn,
        {
            "entity": entity.name,
            "run_id": run_id,
            "snapshot_at": snapshot_at,
            "bucket_bits": BUCKET_BITS,
        },
    )
    conn.execute(
        sql.SQL(read_sql("sync/record_state.sql")).format(
            cursors=work_table(entity, "sync_cursors"),
            hashes=work_table(entity, "sync_hashes"),
            differing=work_table(entity, "sync_differing"),
        )
    )
    row = conn.execute(
        sql.SQL(read_sql("sync/mark_removed.sql")).format(
            target=qualified(entity.target_table),
            key=sql.Identifier(entity.key),
            checked=work_table(entity, "sync_checked"),
            present=work_table(entity, "sync_present"),
        ),
        {"bits": BUCKET_BITS},
    ).fetchone()
    return int(row[0]) if row else 0


def add_removed_columns(conn: psycopg.Connection[Any], entities: list[EntitySpec]) -> None:
    """``legacy_removed_at`` on every entity's target table (added once, never dropped)."""
    for table in dict.fromkeys(entity.target_table for entity in entities):
        conn.execute(
            sql.SQL("alter table {} add column if not exists legacy_removed_at timestamptz").format(
                qualified(table)
            )
        )
