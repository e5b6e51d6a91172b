"""``verify_target``: the row-level proof of the whole target, on demand, from a fresh snapshot.

A verification run re-stages every migrated entity's legacy tables from **one** new read-only
snapshot into staging it claims (``migration.staged_entities``, under its own run id), runs
each entity's transform (with the ``as_of`` of the entity's last validated phase run, so
time-dependent rules decide as they did), compares the transformed rows (minus those held in
quarantine) with the target by legacy id and drops the staging again: ids and hashes are all
that outlives it (decision 0010).

A verification run is a row of ``migration.runs`` with phase -1 (:data:`VERIFY_PHASE`; no
phase gate reads it, and 0 is the nightly sync), because staging ownership references a run.
It refuses to start while a phase run is running: claiming staging would take it away from
that run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from include.entities import LEGACY_PHASES as PHASES  # phase 5 reads the target
from include.entities.spec import EntitySpec
from migration_ops import extract, staging, transform
from migration_ops.audit import row_validation
from migration_ops.audit.row_validation import RowValidation
from migration_ops.db import connect
from migration_ops.errors import MigrationError, errors_without_values

#: ``migration.runs.phase`` of verification runs (0 is the nightly sync).
VERIFY_PHASE = -1
VERIFY_DAG = "verify_target"


def migrated_entities(target_dsn: str) -> list[EntitySpec]:
    """Entities of every phase whose latest run validated, in load order."""
    with connect(target_dsn, application_name="migration:verify") as conn:
        rows = conn.execute(
            """
            select distinct on (phase) phase, status from migration.runs
            where phase > 0 order by phase, started_at desc
            """
        ).fetchall()
    validated = {int(phase) for phase, status in rows if status == "validated"}
    return [e for p in PHASES if p.number in validated for e in p.ordered()]


def _begin(target_dsn: str, run_id: str, triggered_by: str, params: dict[str, Any]) -> None:
    import json

    row_validation.ensure_schema(target_dsn)
    with connect(target_dsn, application_name="migration:verify") as conn:
        running = conn.execute(
            "select run_id from migration.runs where status = 'running' order by run_id"
        ).fetchall()
        if running:
            raise MigrationError(
                VERIFY_DAG, f"runs still running: {[r[0] for r in running]}; verify after them"
            )
        conn.execute(
            """
            insert into migration.runs (run_id, phase, dag_id, triggered_by, params)
            values (%s, %s, %s, %s, %s)
            """,
            (run_id, VERIFY_PHASE, VERIFY_DAG, triggered_by, json.dumps(params)),
        )


def _as_of(target_dsn: str, phase: int) -> str:
    with connect(target_dsn, application_name="migration:verify") as conn:
        row = conn.execute(
            "select as_of from migration.runs where phase = %s and status = 'validated' "
            "order by started_at desc limit 1",
            (phase,),
        ).fetchone()
    return (row[0] if row else datetime.now(UTC)).isoformat()


def verify_entity(target_dsn: str, run_id: str, entity: EntitySpec) -> RowValidation:
    """Transform the staged snapshot of one entity, compare it with the target, drop staging."""
    started = time.monotonic()
    settings = {"run_id": run_id, "phase": entity.phase, "as_of": _as_of(target_dsn, entity.phase)}
    transform.run_transform(target_dsn, entity, settings)
    excluded = row_validation.REWRITTEN_LATER.get(entity.name, ())
    if entity.object_copy is not None:
        copy = entity.object_copy
        excluded += (copy.bucket_column, copy.path_column, copy.checksum_column)
    with connect(target_dsn, application_name=f"migration:verify:{entity.name}") as conn:
        staging.require_owner(conn, run_id, entity, lock=True)
        outcome = row_validation.compare(
            conn,
            entity,
            run_id,
            legacy_table=entity.staging_table("transformed"),
            exclude_quarantined=True,
            exclude_columns=excluded,
        )
        snapshot = conn.execute(
            "select snapshot_at from migration.runs where run_id = %s", (run_id,)
        ).fetchone()
        row_validation.record(
            conn,
            entity,
            run_id,
            outcome,
            mode="verify_target",
            seconds=time.monotonic() - started,
            snapshot_at=snapshot[0] if snapshot else None,
        )
        staging.release(conn, run_id, entity)
    return outcome


def verify_target(
    legacy_dsn: str,
    target_dsn: str,
    *,
    run_id: str | None = None,
    triggered_by: str = "cli",
    params: dict[str, Any] | None = None,
) -> dict[str, RowValidation]:
    """Row-level proof of every migrated entity against one fresh legacy snapshot.

    Returns:
        The comparison per entity; the run is marked validated when every entity matched.

    Raises:
        MigrationError: some entity differs (after every entity was compared and recorded).
    """
    run_id = run_id or f"verify_target__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    entities = migrated_entities(target_dsn)
    _begin(target_dsn, run_id, triggered_by, params or {})
    results: dict[str, RowValidation] = {}
    try:
        with errors_without_values(VERIFY_DAG, "extract"):
            staged = extract.extract_entities(legacy_dsn, target_dsn, run_id, entities)
        _finish(target_dsn, run_id, "running", staged.snapshot.taken_at)
        for entity in entities:
            with errors_without_values(entity.name, "verify"):
                results[entity.name] = verify_entity(target_dsn, run_id, entity)
    except Exception:
        _finish(target_dsn, run_id, "failed")
        raise
    failed = sorted(name for name, outcome in results.items() if not outcome.ok)
    _finish(target_dsn, run_id, "failed" if failed else "validated")
    if failed:
        raise MigrationError(
            VERIFY_DAG,
            f"target differs from legacy in {failed} (run {run_id}; see migration.row_findings)",
            rule=row_validation.RULE,
        )
    return results


def _finish(target_dsn: str, run_id: str, status: str, snapshot_at: Any = None) -> None:
    with connect(target_dsn, application_name="migration:verify") as conn:
        conn.execute(
            """
            update migration.runs set status = %s,
                snapshot_at = coalesce(%s, snapshot_at),
                finished_at = case when %s = 'running' then null else now() end
            where run_id = %s
            """,
            (status, snapshot_at, status, run_id),
        )
        if status != "running":
            for name in conn.execute(
                "select entity from migration.staged_entities where run_id = %s", (run_id,)
            ).fetchall():
                staging.drop_entity_tables(conn, name[0])
            conn.execute("delete from migration.staged_entities where run_id = %s", (run_id,))
