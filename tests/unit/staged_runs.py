"""Run a phase through the engine's own steps from staging tables filled by hand (no extract)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec, PhaseSpec
from migration_ops import pipeline, runs, staging
from migration_ops.db import connect
from migration_ops.validate import QuarantineLimit

#: Where the hand-staged source rows are kept, so a rerun can stage them again after a load
#: dropped them (the product empties staging once an entity is reconciled).
KEPT = "hand_staged"


def keep_or_restore(conn: psycopg.Connection[Any], entity: EntitySpec) -> None:
    """Keep a copy of the entity's hand-staged source tables, or restore them from it."""
    conn.execute(f"create schema if not exists {KEPT}")
    for source in entity.sources:
        name = f"{entity.name}__{source.table}"
        staged, kept = sql.Identifier("staging", name), sql.Identifier(KEPT, name)
        exists = conn.execute("select to_regclass(%s)", (f"staging.{name}",)).fetchone()
        if exists and exists[0]:
            conn.execute(sql.SQL("drop table if exists {}").format(kept))
            conn.execute(sql.SQL("create table {} as table {}").format(kept, staged))
        else:
            conn.execute(sql.SQL("create table {} as table {}").format(staged, kept))


def adopt_staging(dsn: str, run: runs.RunContext, entity: EntitySpec) -> None:
    """Make ``run`` own the hand-staged rows and record what the extract would have."""
    with connect(dsn) as conn:
        keep_or_restore(conn, entity)
        staging.claim(conn, run.run_id, entity, empty=False)
        staged = conn.execute(
            f"select count(*) from staging.{entity.name}__{entity.primary_source.table}"
        ).fetchone()
    assert staged is not None
    runs.record_stage(dsn, run, entity, "extracted", source_rows=staged[0])


def legacy_direct_columns(dsn: str, entity: EntitySpec) -> None:
    """Give the entity's direct columns a legacy table in the same database (``public``).

    The values come from the hand-staged table when it has the column (fixtures written
    before the column stopped being staged), else they are made up from the id.
    """
    with connect(dsn) as conn:
        for direct in entity.direct_columns:
            staged = sql.Identifier("staging", f"{entity.name}__{direct.legacy_table}")
            has_column = conn.execute(
                "select 1 from information_schema.columns where table_schema = 'staging' "
                "and table_name = %s and column_name = %s",
                (f"{entity.name}__{direct.legacy_table}", direct.legacy_column),
            ).fetchone()
            value = (
                sql.Identifier(direct.legacy_column)
                if has_column
                else sql.SQL("'hash$' || {}").format(sql.Identifier(direct.legacy_key))
            )
            conn.execute(
                sql.SQL("drop table if exists {}").format(
                    sql.Identifier("public", direct.legacy_table)
                )
            )
            conn.execute(
                sql.SQL("create table {} as select {} as {}, {}::text as {} from {}").format(
                    sql.Identifier("public", direct.legacy_table),
                    sql.Identifier(direct.legacy_key),
                    sql.Identifier(direct.legacy_key),
                    value,
                    sql.Identifier(direct.legacy_column),
                    staged,
                )
            )


def run_phase_from_staging(
    dsn: str,
    phase: PhaseSpec,
    run_id: str,
    *,
    load: bool = True,
    limit: QuarantineLimit = QuarantineLimit(fraction=1.0),  # noqa: B008 - frozen
) -> runs.RunContext:
    """Transform, validate, (load and reconcile) every entity of ``phase`` from staged rows.

    The rule tests fill ``staging.<entity>__<legacy table>`` with hand-made edge cases; the
    primary table's row count stands in for the extract's ``source_rows``. Loading goes
    through the product's own load step (``include/sql/load/upsert.sql``); direct columns
    read a legacy table made in the same database (:func:`legacy_direct_columns`).
    """
    run = runs.begin_run(dsn, phase, run_id, triggered_by="pytest", params={})
    for entity in phase.ordered():
        adopt_staging(dsn, run, entity)
        pipeline.transform_step(dsn, run, entity)
        pipeline.validate_step(dsn, run, entity, limit=limit)
        if load:
            if entity.direct_columns:
                legacy_direct_columns(dsn, entity)
            pipeline.load_step(dsn, run, entity, legacy_dsn=dsn)
            pipeline.checkpoint_step(dsn, run, entity)
    if load:
        runs.finish_run(dsn, run, phase)
    return run


def recorded_quarantine(
    dsn: str, run_id: str, entities: Sequence[EntitySpec]
) -> dict[str, set[tuple[int, str]]]:
    """Open quarantine rows the run recorded in ``migration.quarantine``, per entity."""
    found: dict[str, set[tuple[int, str]]] = {e.name: set() for e in entities}
    with connect(dsn) as conn:
        for entity, legacy_id, rule in conn.execute(
            "select entity, legacy_id, rule from migration.quarantine "
            "where last_run_id = %s and resolved_at is null",
            (run_id,),
        ):
            found[entity].add((int(legacy_id), rule))
    return found


def staged_quarantine(dsn: str, entities: Sequence[EntitySpec]) -> dict[str, set[tuple[int, str]]]:
    """The quarantine decisions staged by validate, not yet recorded (no load yet)."""
    found: dict[str, set[tuple[int, str]]] = {}
    with connect(dsn) as conn:
        for entity in entities:
            rows = conn.execute(
                sql.SQL("select legacy_id, rule from {}").format(
                    sql.Identifier("staging", f"{entity.name}__quarantine")
                )
            ).fetchall()
            found[entity.name] = {(int(legacy_id), rule) for legacy_id, rule in rows}
    return found
