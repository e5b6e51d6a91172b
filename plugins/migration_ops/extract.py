"""Extract step: stream a phase's legacy tables into staging with binary COPY, one snapshot.

The legacy side is only ever read, in READ ONLY, REPEATABLE READ transactions. One of them
exports its snapshot (``pg_export_snapshot``) and stays open while worker sessions import it
(``SET TRANSACTION SNAPSHOT``), so every table of every entity of the phase is read as of the
same instant: on a legacy database that keeps writing, a child never references a parent the
parent's read did not see. Rows pass through this process as opaque COPY chunks (constant
memory, no per-row Python work) into UNLOGGED staging tables whose column types are copied from
the legacy catalog, which keeps binary COPY exact. Each entity's staging is claimed for the run
(:mod:`migration_ops.staging`) in the transaction that fills it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Copy, sql
from psycopg.copy import QueuedLibpqWriter

from include.entities.spec import EntitySpec, SourceTable
from migration_ops import staging
from migration_ops.db import connect, connect_legacy, qualified, read_sql, scalar
from migration_ops.errors import SchemaDriftError
from migration_ops.progress import Progress
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


@dataclass(frozen=True)
class LegacySnapshot:
    """The legacy snapshot a phase run reads.

    Attributes:
        snapshot_id: what ``pg_export_snapshot`` returned; valid while its exporter is open.
        taken_at: start of the statement that took it: every commit before it is visible.
        txid_snapshot: ``pg_current_snapshot()`` as text (xmin:xmax:xip), which tells exactly
            which transactions it saw (what a later incremental run must look back for).
    """

    snapshot_id: str
    taken_at: datetime
    txid_snapshot: str


@dataclass(frozen=True)
class PhaseExtract:
    """What one phase extract staged: its snapshot and rows copied per entity and table."""

    snapshot: LegacySnapshot
    counts: dict[str, dict[str, int]]


#: Fills one entity's staging inside the shared snapshot: (legacy session, target session,
#: run id, entity, snapshot) → rows staged per legacy table. The caller commits the target.
Stager = Callable[
    [psycopg.Connection[Any], psycopg.Connection[Any], str, EntitySpec, "LegacySnapshot"],
    dict[str, int],
]


def stage_whole(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    run_id: str,
    entity: EntitySpec,
    snapshot: LegacySnapshot,
) -> dict[str, int]:
    """Claim the entity's staging for the run and copy every source table whole."""
    staging.claim(target, run_id, entity, snapshot.taken_at)
    return {
        table.table: (
            _stage_target_table(target, entity, table)
            if table.origin == "target"
            else copy_table(source, target, entity, table)
        )
        for table in entity.sources
    }


def extract_entities(
    legacy_dsn: str,
    target_dsn: str,
    run_id: str,
    entities: Sequence[EntitySpec],
    *,
    workers: int = 2,
    stage: Stager = stage_whole,
    after: Mapping[str, Sequence[str]] | None = None,
) -> PhaseExtract:
    """Stage every source table of ``entities`` from one legacy snapshot.

    Entities are started in the given order, ``workers`` at a time. ``after`` names, per
    entity, entities (earlier in the order) whose staging must be committed before it starts:
    the sync's followers read what their parents staged.

    Rerunnable: each entity's staging is claimed, emptied and refilled in one target
    transaction, so a killed and retried extract leaves either the old complete copy or the
    new one, never a mix.
    """
    waits = after or {}
    with connect_legacy(legacy_dsn, application_name="migration:extract:snapshot") as exporter:
        row = exporter.execute(
            "select pg_export_snapshot(), statement_timestamp(), pg_current_snapshot()::text"
        ).fetchone()
        assert row is not None
        snapshot = LegacySnapshot(str(row[0]), row[1], str(row[2]))
        # The exporting transaction stays open until every worker has read its tables.
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(entities)))) as pool:
            futures: dict[str, Future[dict[str, int]]] = {}
            for entity in entities:
                # submitted in order and run first-in first-out: a parent has started (or
                # finished) before its follower waits for it, so no worker waits on a queue
                parents = [futures[name] for name in waits.get(entity.name, ()) if name in futures]
                futures[entity.name] = pool.submit(
                    _after(parents, stage_in_snapshot),
                    legacy_dsn,
                    target_dsn,
                    run_id,
                    entity,
                    snapshot,
                    stage,
                )
            counts = {name: future.result() for name, future in futures.items()}
    return PhaseExtract(snapshot, counts)


def _after(
    parents: Sequence[Future[dict[str, int]]], work: Callable[..., dict[str, int]]
) -> Callable[..., dict[str, int]]:
    """``work`` that first waits for ``parents`` (and fails with the first that failed)."""

    def run(*args: Any) -> dict[str, int]:
        for parent in parents:
            parent.result()
        return work(*args)

    return run


def stage_in_snapshot(
    legacy_dsn: str,
    target_dsn: str,
    run_id: str,
    entity: EntitySpec,
    snapshot: LegacySnapshot,
    stage: Stager = stage_whole,
) -> dict[str, int]:
    """Open a legacy session in ``snapshot`` and a target transaction, and ``stage`` the entity.

    Returns:
        Rows copied per legacy table.
    """
    with (
        connect_legacy(legacy_dsn, application_name=f"migration:extract:{entity.name}") as source,
        connect(target_dsn, application_name=f"migration:extract:{entity.name}") as target,
    ):
        # Must be the first statement of the legacy transaction.
        source.execute(
            sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot.snapshot_id))
        )
        return stage(source, target, run_id, entity, snapshot)


def _stage_target_table(
    target: psycopg.Connection[Any], entity: EntitySpec, table: SourceTable
) -> int:
    """Stage columns of a target ``public`` table (phase 5 reads migrated rows, not legacy).

    Rows the sync marked ``legacy_removed_at`` (the column exists once a sync ran) are gone
    from legacy and are not staged: phase 5 treats them as deleted. In the claiming
    transaction, so the staged copy and the claim commit together.
    """
    staged = qualified(entity.staging_table(table.table))
    source = sql.Identifier("public", table.table)
    removable = scalar(
        target,
        "select true from pg_attribute where attrelid = %s::regclass "
        "and attname = 'legacy_removed_at' and not attisdropped",
        (f"public.{table.table}",),
    )
    target.execute(
        sql.SQL("create unlogged table {} as select {} from {} {}").format(
            staged,
            sql.SQL(", ").join(sql.Identifier(name) for name in table.columns),
            source,
            sql.SQL("where legacy_removed_at is null" if removable else ""),
        )
    )
    rows = int(scalar(target, sql.SQL("select count(*) from {}").format(staged)))
    target.execute(sql.SQL("analyze {}").format(staged))
    return rows


#: Bytes gathered before one write: COPY TO hands over one row per read (~30 bytes for a task),
#: and a write per row cost a third of the extract.
COPY_BUFFER_BYTES = 1 << 20


def pass_through(outgoing: Copy, incoming: Copy, progress: Progress | None = None) -> None:
    """Forward a COPY TO stream into a COPY FROM in ~1 MB writes (constant memory).

    ``progress`` counts rows once per write: a binary COPY TO hands over one row per read
    (the header rides with the first row, the trailer is one more read at the end), so the
    reads less one are the rows, without parsing a byte.
    """
    buffer = bytearray()
    rows = 0
    for chunk in outgoing:
        buffer += chunk
        rows += 1
        if len(buffer) >= COPY_BUFFER_BYTES:
            incoming.write(buffer)
            if progress is not None:
                progress.add(rows)
            buffer, rows = bytearray(), 0  # a new one: the queued writer may still hold the last
    if buffer:
        incoming.write(buffer)
    if progress is not None:
        progress.add(rows - 1)  # the trailer's read


def estimated_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> int | None:
    """The planner's row estimate of a table (``pg_class.reltuples``), for a progress ETA.

    Free (a catalog read, no scan of a table that may hold millions of rows), as fresh as the
    table's last VACUUM/ANALYZE; ``None`` for a never-analysed table (``-1``) or an empty one.
    """
    estimate = scalar(conn, read_sql("legacy/row_estimate.sql"), (f"{schema}.{table}",))
    return int(estimate) if estimate is not None and estimate > 0 else None


def copy_table(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    entity: EntitySpec,
    table: SourceTable,
    *,
    where: sql.Composable | None = None,
    params: Any = None,
) -> int:
    """Create ``staging.<entity>__<table>`` with the legacy column types and COPY rows into it.

    Logs progress (rows done, rows/s, ETA) per ~1 MB chunk, throttled, against the table's
    ``pg_class.reltuples`` estimate (:func:`estimated_rows`); the final line has the exact count.

    Args:
        source: a legacy session (in the run's snapshot).
        target: the target session; the caller owns its transaction.
        entity: the entity the table is staged for.
        table: the source table and its columns.
        where: optional filter (the sync stages only the rows of changed entity rows).
        params: values for the placeholders of ``where`` (bound, never formatted).

    Returns:
        Rows staged.
    """
    columns = legacy_column_types(source, entity.name, table)
    staged = qualified(entity.staging_table(table.table))
    target.execute(
        sql.SQL("create unlogged table {} ({})").format(
            staged,
            sql.SQL(", ").join(
                # The type text comes from the legacy catalog (format_type), not from data.
                sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))
                for name, pg_type in columns
            ),
        )
    )
    column_list = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    copy_out = sql.SQL("copy (select {} from {}{}) to stdout (format binary)").format(
        column_list,
        sql.Identifier(LEGACY_SCHEMA, table.table),
        sql.SQL(" where {}").format(where) if where is not None else sql.SQL(""),
    )
    # freeze: the table was created in this transaction, so its rows can be written frozen and
    # all-visible; the transform, the counts and ANALYZE that read them next set no hint bits
    copy_in = sql.SQL("copy {} ({}) from stdin (format binary, freeze)").format(staged, column_list)
    # A filtered copy (the sync's changed rows) has no cheap total: rows and rate, no ETA.
    total = None if where is not None else estimated_rows(source, LEGACY_SCHEMA, table.table)
    progress = Progress(f"extract {entity.name}.{table.table}", total)
    with (
        source.cursor() as reader,
        target.cursor() as writer,
        reader.copy(copy_out, params) as outgoing,
        # a worker thread sends while this one receives: both servers work at once, as in a
        # psql | psql pipe, instead of taking turns
        writer.copy(copy_in, writer=QueuedLibpqWriter(writer)) as incoming,
    ):
        pass_through(outgoing, incoming, progress)
    # COPY FROM reports no row count for binary input: count what actually landed.
    rows = int(scalar(target, sql.SQL("select count(*) from {}").format(staged)))
    progress.finish(rows)
    target.execute(sql.SQL("analyze {}").format(staged))
    return rows
