"""Find what changed in legacy since the last sync and stage exactly the rows it touches.

Per entity, inside the sync's one legacy snapshot (see :mod:`migration_ops.extract`):

1. each source table's change detection (:class:`~include.entities.spec.ChangeDetection`)
   yields the *entity rows* (primary legacy ids) it touches: ``updated_at`` and
   ``insert_only`` read only the rows past their cursor; ``content`` compares one
   fingerprint per bucket of 64 ids with the hashes kept from the last sync and streams
   ``(id, hash)`` pairs of the buckets that differ only (:mod:`migration_ops.sync.buckets`; a
   row deleted from a child table touches the entity rows it belonged to); ``full`` tables
   are read whole;
2. entity rows still quarantined are touched too (a parent that arrived heals them), and so
   are the rows following a changed parent (:class:`~include.entities.spec.Follow`);
3. every source table is staged for the touched entity rows only, so the unchanged transform,
   validate and load steps run on the delta; for the deletes, the primary table's ids are
   streamed (ids only) from the buckets where legacy and the target disagree, and the new
   cursors and hashes wait in staging for the load, which records them in its own
   transaction.

An entity with no sync state yet (the first sync after a full load) is staged whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec, SourceTable
from migration_ops import staging
from migration_ops.db import qualified, scalar
from migration_ops.extract import LegacySnapshot, copy_table
from migration_ops.settings import LEGACY_SCHEMA
from migration_ops.sync import buckets


@dataclass(frozen=True)
class Windows:
    """How far back a sync re-reads, for commits that arrive late.

    Attributes:
        lookback: ``updated_at`` rows this long before the cursor are read again.
        id_lookback: ids this far below the high-water mark are read again (an insert whose
            id was taken before the last snapshot and committed after it).
    """

    lookback: timedelta = timedelta(hours=1)
    id_lookback: int = 1000

    @classmethod
    def from_env(cls) -> Windows:
        """``MIGRATION_SYNC_LOOKBACK_MINUTES`` / ``MIGRATION_SYNC_ID_LOOKBACK`` or the defaults."""
        minutes = os.environ.get("MIGRATION_SYNC_LOOKBACK_MINUTES")
        ids = os.environ.get("MIGRATION_SYNC_ID_LOOKBACK")
        return cls(
            lookback=timedelta(minutes=float(minutes)) if minutes else cls.lookback,
            id_lookback=int(ids) if ids else cls.id_lookback,
        )


def _create_work_tables(target: psycopg.Connection[Any], entity: EntitySpec) -> None:
    for suffix, columns in (
        ("sync_touched", "primary_id bigint"),
        ("sync_cursors", "source_table text, cursor_at timestamptz, high_water_id bigint"),
        (
            "sync_hashes",
            "source_table text, legacy_id bigint, row_hash bigint, primary_ids bigint[]",
        ),
        ("sync_present", "id bigint primary key"),
        *buckets.WORK_TABLES,
    ):
        target.execute(
            sql.SQL("create unlogged table {} ({})").format(
                buckets.work_table(entity, suffix), sql.SQL(columns)
            )
        )


def _state(
    target: psycopg.Connection[Any], entity: EntitySpec, table: SourceTable
) -> tuple[Any, Any] | None:
    return target.execute(
        "select cursor_at, high_water_id from migration.sync_cursors "
        "where entity = %s and source_table = %s",
        (entity.name, table.table),
    ).fetchone()


def _detect_by_cursor(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    entity: EntitySpec,
    table: SourceTable,
    windows: Windows,
) -> None:
    """``updated_at`` / ``insert_only``: rows past the cursor (minus the look-back windows)."""
    legacy = sql.Identifier(LEGACY_SCHEMA, table.table)
    cursor = sql.Identifier(table.change.cursor_column or "id")
    state = _state(target, entity, table)
    conditions: list[sql.Composable] = [sql.SQL("id > %(hwm)s")]
    if table.change.kind == "updated_at":
        conditions.append(sql.SQL("{} >= %(since)s").format(cursor))
    hwm = state[1] if state and state[1] is not None else None
    since = state[0] - windows.lookback if state and state[0] is not None else None
    params = {"hwm": -(2**63) if hwm is None else hwm - windows.id_lookback, "since": since}
    buckets.stream(
        source,
        target,
        sql.SQL("select unnest({}) from {} where {}").format(
            buckets.primary_array(table), legacy, sql.SQL(" or ").join(conditions)
        ),
        params,
        buckets.work_table(entity, "sync_touched"),
    )
    new_cursor = (
        sql.SQL("max({})").format(cursor)
        if table.change.kind == "updated_at"
        else sql.SQL("null::timestamptz")
    )
    row = source.execute(
        sql.SQL("select {}, max(id) from {}").format(new_cursor, legacy)
    ).fetchone()
    assert row is not None
    target.execute(
        sql.SQL("insert into {} values (%s, %s, %s)").format(
            buckets.work_table(entity, "sync_cursors")
        ),
        (table.table, row[0], row[1]),
    )


def _detect_by_content(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    entity: EntitySpec,
    table: SourceTable,
) -> None:
    """``content``: the rows of the id buckets whose fingerprint differs from the stored hashes.

    Within those buckets, a row whose hash or entity rows differ from the stored ones (or that
    exists on one side only) touches the entity rows it belongs to, before and after.
    """
    differing = buckets.differing_row_buckets(source, target, entity, table)
    if not differing:
        return
    buckets.stream_row_hashes(source, target, entity, table, differing)
    target.execute(
        sql.SQL(
            """
            insert into {touched}
            select unnest(coalesce(h.primary_ids, '{{}}') || coalesce(o.primary_ids, '{{}}'))
            from (select * from {hashes} where source_table = %(table)s) as h
            full join (
                -- the stored rows of the differing buckets, one index range per bucket
                select o.* from {differing} as d
                cross join lateral (
                    select * from migration.sync_row_hashes as o
                    where o.entity = %(entity)s and o.source_table = d.source_table
                        and o.legacy_id >= d.bucket << %(bits)s
                        and o.legacy_id < (d.bucket + 1) << %(bits)s
                    offset 0
                ) as o
                where d.source_table = %(table)s
            ) as o on o.legacy_id = h.legacy_id
            where h.row_hash is distinct from o.row_hash
                or h.primary_ids is distinct from o.primary_ids
            """
        ).format(
            touched=buckets.work_table(entity, "sync_touched"),
            hashes=buckets.work_table(entity, "sync_hashes"),
            differing=buckets.work_table(entity, "sync_differing"),
        ),
        {"table": table.table, "entity": entity.name, "bits": buckets.BUCKET_BITS},
    )


def _touch_followers_and_quarantine(
    source: psycopg.Connection[Any], target: psycopg.Connection[Any], entity: EntitySpec
) -> None:
    touched = buckets.work_table(entity, "sync_touched")
    target.execute(
        sql.SQL(
            "insert into {} select legacy_id from migration.quarantine "
            "where entity = %s and resolved_at is null"
        ).format(touched),
        (entity.name,),
    )
    for follow in entity.follows:
        parents = target.execute(
            sql.SQL("select coalesce(array_agg(id), '{{}}') from {}").format(
                qualified(f"staging.{follow.parent}__{follow.parent_table}")
            )
        ).fetchone()
        buckets.stream(
            source,
            target,
            sql.SQL("select id from {} where {} = any(%s)").format(
                sql.Identifier(LEGACY_SCHEMA, entity.primary_source.table),
                sql.Identifier(follow.column),
            ),
            (parents[0] if parents else [],),
            touched,
        )


def _delta_filter(
    target: psycopg.Connection[Any], entity: EntitySpec, table: SourceTable, touched: list[int]
) -> tuple[sql.Composable, dict[str, Any]]:
    """The legacy filter that stages ``table`` for the touched entity rows only."""
    if table.change.kind == "referenced":
        # the primary table is staged first: the ids its staged rows point at
        assert table.change.referenced_by is not None, (entity.name, table.table)
        ids = scalar(
            target,
            sql.SQL("select coalesce(array_agg(distinct {}), '{{}}') from {}").format(
                sql.Identifier(table.change.referenced_by),
                buckets.work_table(entity, entity.primary_source.table),
            ),
        )
        return sql.SQL("id = any(%(ids)s)"), {"ids": list(ids)}
    where = sql.SQL(" or ").join(
        sql.SQL("{} = any(%(ids)s)").format(sql.Identifier(c)) for c in table.primary_columns
    )
    return where, {"ids": touched}


def _stage_sources(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    entity: EntitySpec,
    touched: list[int] | None,
) -> dict[str, int]:
    """Stage every source table: whole when ``touched`` is None or the table is ``full``."""
    counts = {}
    for table in entity.sources:
        where: sql.Composable | None = None
        params: Any = None
        if touched is not None and table.change.kind != "full":
            where, params = _delta_filter(target, entity, table, touched)
        counts[table.table] = copy_table(source, target, entity, table, where=where, params=params)
    return counts


def stage_delta(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    run_id: str,
    entity: EntitySpec,
    snapshot: LegacySnapshot,
    windows: Windows,
) -> dict[str, int]:
    """Claim the entity's staging for ``run_id`` and fill it with the entity's delta.

    ``source`` must already read the sync's snapshot; the caller commits ``target``.

    Returns:
        Rows staged per legacy table.
    """
    staging.claim(target, run_id, entity, snapshot.taken_at)
    _create_work_tables(target, entity)
    first = not scalar(
        target,
        "select exists (select 1 from migration.sync_cursors where entity = %(e)s) "
        "or exists (select 1 from migration.sync_row_hashes where entity = %(e)s)",
        {"e": entity.name},
    )
    for table in entity.sources:
        if table.change.kind in ("updated_at", "insert_only"):
            _detect_by_cursor(source, target, entity, table, windows)
        elif table.change.kind == "content":
            _detect_by_content(source, target, entity, table)
    _touch_followers_and_quarantine(source, target, entity)
    # statistics: verify and the quarantine look the touched rows up by key, not by a scan
    target.execute(sql.SQL("analyze {}").format(buckets.work_table(entity, "sync_touched")))
    checked = buckets.checked_id_buckets(source, target, entity)
    buckets.stream_present_ids(source, target, entity, checked)
    touched = None
    if not first:
        row = target.execute(
            sql.SQL("select coalesce(array_agg(distinct primary_id), '{{}}') from {}").format(
                buckets.work_table(entity, "sync_touched")
            )
        ).fetchone()
        touched = list(row[0]) if row else []
    return _stage_sources(source, target, entity, touched)
