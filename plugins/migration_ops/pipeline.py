"""The per-entity data path, one function per DAG task.

Extract → transform → validate → load → checkpoint.

An entity whose spec has an object copy gets one more step between validate and load; one
whose spec de-duplicates (``DedupSpec``) gets one between transform and validate. Each
function takes plain values (DSNs, a :class:`RunContext`, an entity spec), does its
work in the databases, records its checkpoint and returns counts. They know nothing about
Airflow, so the DAG factory wires them and tests can call them directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.entities.spec import EntitySpec
from migration_ops import extract, load, runs, storage, transform, validate
from migration_ops.errors import database_errors_without_values
from migration_ops.runs import RunContext
from migration_ops.storage import StorageSettings
from migration_ops.validate import QuarantineLimit

if TYPE_CHECKING:
    from migration_ops.dedup.engine import Thresholds


def extract_step(
    legacy_dsn: str, target_dsn: str, run: RunContext, entity: EntitySpec
) -> dict[str, int]:
    """Stage the entity's legacy tables; the primary table's count is the entity's source_rows."""
    with database_errors_without_values(entity.name, "extract"):
        counts = extract.extract_entity(legacy_dsn, target_dsn, entity)
        runs.record_stage(
            target_dsn, run, entity, "extracted", source_rows=counts[entity.primary_source.table]
        )
    return counts


def transform_step(target_dsn: str, run: RunContext, entity: EntitySpec) -> int:
    """Build the target-shaped rows in staging."""
    with database_errors_without_values(entity.name, "transform"):
        rows = transform.run_transform(target_dsn, entity, run.settings())
        runs.record_stage(target_dsn, run, entity, "transformed", transformed_rows=rows)
    return rows


def dedup_step(
    target_dsn: str,
    run: RunContext,
    entity: EntitySpec,
    *,
    thresholds: Thresholds | None = None,
    unlink_ids: tuple[int, ...] = (),
    actor: str = "migration",
) -> dict[str, int]:
    """Link the entity's duplicate rows (linked, not destroyed); first undo ``unlink_ids``."""
    from migration_ops.dedup import step

    with database_errors_without_values(entity.name, "dedup"):
        for legacy_id in unlink_ids:
            step.unlink(target_dsn, legacy_id, actor=actor, reason=f"run {run.run_id}")
        outcome = step.dedup_entity(
            target_dsn, entity, run.run_id, thresholds or step.PATIENT_THRESHOLDS
        )
    return outcome.as_dict()


def validate_step(
    target_dsn: str, run: RunContext, entity: EntitySpec, *, limit: QuarantineLimit
) -> dict[str, int]:
    """Run the entity's GX suite, quarantine failing rows, gate the load."""
    try:
        with database_errors_without_values(entity.name, "validate"):
            outcome = validate.validate_entity(target_dsn, entity, run.run_id, limit=limit)
    except Exception:
        runs.record_stage(target_dsn, run, entity, "failed", validation_success=False)
        raise
    runs.record_stage(
        target_dsn,
        run,
        entity,
        "validated",
        quarantined_rows=outcome.quarantined_rows,
        validation_success=True,
    )
    return {"validated_rows": outcome.validated_rows, "quarantined_rows": outcome.quarantined_rows}


def object_copy_step(
    target_dsn: str,
    run: RunContext,
    entity: EntitySpec,
    *,
    settings: StorageSettings,
    limit: QuarantineLimit,
) -> dict[str, int]:
    """Copy the validated rows' bytes to Storage; quarantine rows whose source is missing."""
    try:
        with database_errors_without_values(entity.name, "copy_objects"):
            outcome = storage.copy_objects(target_dsn, entity, run.run_id, settings, limit=limit)
    except Exception:
        runs.record_stage(target_dsn, run, entity, "failed", validation_success=False)
        raise
    runs.record_stage(
        target_dsn, run, entity, "validated", quarantined_rows=outcome.quarantined_rows
    )
    return outcome.as_dict()


def load_step(target_dsn: str, run: RunContext, entity: EntitySpec) -> dict[str, int]:
    """Upsert the validated rows (the checkpoint is written inside the same transaction)."""
    with database_errors_without_values(entity.name, "load"):
        outcome = load.load_entity(target_dsn, entity, run.settings())
    return {
        "inserted_rows": outcome.inserted_rows,
        "updated_rows": outcome.updated_rows,
        "unchanged_rows": outcome.unchanged_rows,
    }


def checkpoint_step(target_dsn: str, run: RunContext, entity: EntitySpec) -> dict[str, int]:
    """Reconcile the entity: source = loaded + merged + quarantined, or fail."""
    with database_errors_without_values(entity.name, "checkpoint"):
        return runs.reconcile(target_dsn, run, entity)


def run_entity(
    legacy_dsn: str,
    target_dsn: str,
    run: RunContext,
    entity: EntitySpec,
    *,
    limit: QuarantineLimit = QuarantineLimit(),  # noqa: B008 - frozen, immutable default
    storage_settings: StorageSettings | None = None,
) -> dict[str, int]:
    """The whole data path for one entity, in order (what one task group does).

    An entity with an object copy reads its Storage settings from
    ``AIRFLOW_CONN_SUPABASE_STORAGE`` unless ``storage_settings`` is given.
    """
    extract_step(legacy_dsn, target_dsn, run, entity)
    transform_step(target_dsn, run, entity)
    if entity.dedup is not None:
        dedup_step(target_dsn, run, entity)
    validate_step(target_dsn, run, entity, limit=limit)
    if entity.object_copy is not None:
        settings = storage_settings or storage.env_settings(entity.name)
        object_copy_step(target_dsn, run, entity, settings=settings, limit=limit)
    load_step(target_dsn, run, entity)
    return checkpoint_step(target_dsn, run, entity)
