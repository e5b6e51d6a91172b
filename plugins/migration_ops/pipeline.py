"""The per-entity data path, one function per DAG task.

Extract (the whole phase, one legacy snapshot) → per entity: transform → validate → load →
verify (row-level proof) → checkpoint.

An entity whose spec has an object copy gets one more step between validate and load; one
whose spec de-duplicates (``DedupSpec``) gets one between transform and validate. Each
function takes plain values (DSNs, a :class:`RunContext`, entity specs), does its work in the
databases, records its checkpoint and returns counts. They know nothing about Airflow, so the
DAG factory wires them and tests can call them directly.

Every step after extract first checks that its run is still running and that the entity's
staging belongs to it (:func:`guard`); every step's errors leave it value-free
(:func:`~migration_ops.errors.errors_without_values`). Within a step, the target sessions of
the guard, the work and the bookkeeping are one reused session where they follow each other
(:func:`~migration_ops.db.reusing_connections`). Each step records its own start and end
(:func:`~migration_ops.step_timings.timed`) for the report's time chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from include.entities.spec import EntitySpec
from migration_ops import extract, load, runs, staging, storage, transform, validate
from migration_ops.bulk_load import LoadPath
from migration_ops.db import connect, reusing_connections
from migration_ops.errors import MigrationError, TransientStepError, errors_without_values
from migration_ops.runs import RunContext
from migration_ops.step_timings import timed
from migration_ops.storage import StorageSettings
from migration_ops.sync import apply as sync_apply
from migration_ops.sync import detect
from migration_ops.validate import QuarantineLimit

if TYPE_CHECKING:
    from migration_ops.ai.providers import EmbeddingProvider
    from migration_ops.dedup.engine import Thresholds


def guard(target_dsn: str, run: RunContext, entity: EntitySpec) -> None:
    """Refuse to work for a run that is over, or on staging another run filled."""
    with connect(target_dsn, application_name=f"migration:guard:{entity.name}") as conn:
        runs.require_running(conn, run, entity=entity.name)
        staging.require_owner(conn, run.run_id, entity)


@reusing_connections()
@timed("extract")
def extract_step(
    legacy_dsn: str,
    target_dsn: str,
    run: RunContext,
    entities: Sequence[EntitySpec],
    *,
    workers: int = 2,
) -> dict[str, int]:
    """Stage the entities' legacy tables from one snapshot; record it and each source_rows.

    A sync run (:attr:`RunContext.incremental`) stages each entity's delta instead, in phase
    order, a follower only once its parent's delta is staged (it reads what the parent staged).

    Returns:
        ``source_rows`` per entity (the primary table's count).
    """
    names = ",".join(entity.name for entity in entities)
    with errors_without_values(names, "extract"):
        with connect(target_dsn, application_name="migration:extract") as conn:
            runs.require_running(conn, run, entity=names)
        if run.incremental:
            stage = partial(detect.stage_delta, windows=detect.Windows.from_env())
            staged = extract.extract_entities(
                legacy_dsn,
                target_dsn,
                run.run_id,
                entities,
                workers=workers,
                stage=stage,
                after={e.name: [f.parent for f in e.follows] for e in entities},
            )
        else:
            staged = extract.extract_entities(
                legacy_dsn, target_dsn, run.run_id, entities, workers=workers
            )
        runs.record_snapshot(
            target_dsn, run, staged.snapshot.taken_at, staged.snapshot.txid_snapshot
        )
        source_rows = {}
        for entity in entities:
            source_rows[entity.name] = staged.counts[entity.name][entity.primary_source.table]
            runs.record_stage(
                target_dsn, run, entity, "extracted", source_rows=source_rows[entity.name]
            )
    return source_rows


@reusing_connections()
@timed("transform")
def transform_step(target_dsn: str, run: RunContext, entity: EntitySpec) -> int:
    """Build the target-shaped rows in staging."""
    with errors_without_values(entity.name, "transform"):
        guard(target_dsn, run, entity)
        rows = transform.run_transform(target_dsn, entity, run.settings())
        runs.record_stage(target_dsn, run, entity, "transformed", transformed_rows=rows)
    return rows


@reusing_connections()
@timed("dedup")
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

    with errors_without_values(entity.name, "dedup"):
        guard(target_dsn, run, entity)
        for legacy_id in unlink_ids:
            step.unlink(target_dsn, legacy_id, actor=actor, reason=f"run {run.run_id}")
        outcome = step.dedup_entity(
            target_dsn,
            entity,
            run.run_id,
            thresholds or step.PATIENT_THRESHOLDS,
            stored_model=run.incremental,  # a sync applies the model the full run estimated
        )
    return outcome.as_dict()


@reusing_connections()
@timed("validate")
def validate_step(
    target_dsn: str, run: RunContext, entity: EntitySpec, *, limit: QuarantineLimit
) -> dict[str, int]:
    """Run the entity's GX suite, stage the failing rows' quarantine, gate the load."""
    with errors_without_values(entity.name, "validate"):
        guard(target_dsn, run, entity)
        try:
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


@reusing_connections()
@timed("copy_objects")
def object_copy_step(
    target_dsn: str,
    run: RunContext,
    entity: EntitySpec,
    *,
    settings: StorageSettings,
    limit: QuarantineLimit,
) -> dict[str, int]:
    """Copy the validated rows' bytes to Storage; quarantine rows whose source is missing."""
    with errors_without_values(entity.name, "copy_objects"):
        guard(target_dsn, run, entity)
        try:
            outcome = storage.copy_objects(target_dsn, entity, settings, limit=limit)
        except Exception:
            runs.record_stage(target_dsn, run, entity, "failed", validation_success=False)
            raise
        runs.record_stage(
            target_dsn, run, entity, "validated", quarantined_rows=outcome.quarantined_rows
        )
    return outcome.as_dict()


@reusing_connections()
@timed("load")
def load_step(
    target_dsn: str,
    run: RunContext,
    entity: EntitySpec,
    *,
    legacy_dsn: str | None = None,
    path: LoadPath = "auto",
) -> dict[str, Any]:
    """Write the validated rows, record the quarantine and the checkpoint, in one transaction.

    ``legacy_dsn`` is needed only by an entity with direct columns (credentials that never
    rest in staging; see :class:`~include.entities.spec.DirectColumn`). ``path`` chooses
    between the bulk path and the upsert (see :data:`~migration_ops.bulk_load.LoadPath`).
    The bulk path adds its seconds per part (``bulk_seconds``).
    """
    with errors_without_values(entity.name, "load"):
        outcome = load.load_entity(target_dsn, entity, run, legacy_dsn=legacy_dsn, path=path)
    return {
        "bulk_path": int(outcome.bulk_path),
        "inserted_rows": outcome.inserted_rows,
        "updated_rows": outcome.updated_rows,
        "unchanged_rows": outcome.unchanged_rows,
        **(
            {"bulk_seconds": {part: round(s, 3) for part, s in outcome.bulk_seconds.items()}}
            if outcome.bulk_path
            else {}
        ),
    }


@reusing_connections()
@timed("verify")
def verify_step(target_dsn: str, run: RunContext, entity: EntitySpec) -> dict[str, int | str]:
    """Row-level proof right after the load: every loaded row equals its legacy row.

    Before the checkpoint, while the staging still holds the transformed rows (see
    :mod:`migration_ops.audit.row_validation`); a mismatch fails the entity.
    """
    from migration_ops.audit import row_validation

    with errors_without_values(entity.name, "verify"):
        guard(target_dsn, run, entity)
        scope = sync_apply.touched(entity) if run.incremental else None
        return row_validation.validate_after_load(
            target_dsn, run.run_id, entity, scope=scope
        ).as_dict()


@reusing_connections()
@timed("embed")
def embed_step(
    target_dsn: str,
    run: RunContext,
    entity: EntitySpec,
    *,
    provider: EmbeddingProvider | None = None,
    workers: int = 4,
    backoff_seconds: float = 1.0,
) -> dict[str, int]:
    """Phase 5: embed the entity's queue with the configured provider (see :mod:`migration_ops.ai`).

    Every queued row ends done (embedded, unchanged or without text) or dead-lettered; the
    counts go to the task's return value, never a text.
    """
    from migration_ops.ai import embed_queue, providers

    assert entity.embedding is not None, f"{entity.name} has no embedding spec"
    try:
        chosen = provider or providers.configured_provider()
    except providers.ProviderNotConfigured as exc:
        raise MigrationError(entity.name, str(exc), rule="embed.provider_configured") from None
    with errors_without_values(entity.name, "embed"):
        guard(target_dsn, run, entity)
        # a provider change: rows of another model are embedded again with this one
        requeued = embed_queue.requeue_other_model(target_dsn, entity.embedding, chosen.model_id)
        stats = embed_queue.process_queue(
            target_dsn, entity.embedding, chosen, workers=workers, backoff_seconds=backoff_seconds
        )
    return {**vars(stats), "requeued_rows": requeued}


@reusing_connections()
@timed("dify")
def dify_step(target_dsn: str, run: RunContext, entity: EntitySpec) -> dict[str, int]:
    """Phase 5: sync the entity's Dify knowledge base when ``dify_knowledge`` is configured.

    Without the connection the step does nothing and says so in its counts (``skipped``).
    """
    from migration_ops.ai import dify, dify_sync

    assert entity.embedding is not None, f"{entity.name} has no embedding spec"
    with errors_without_values(entity.name, "dify"):
        guard(target_dsn, run, entity)
        configured = dify.configured_client()
        if configured is None:
            return {"skipped": 1}
        client, settings = configured
        try:
            stats = dify_sync.sync_entity(target_dsn, entity.embedding, client, settings)
        except dify.DifyError as exc:
            # status and code only; retryable kinds (rate limit, 5xx) go back to Airflow's retries
            if exc.retryable:
                raise TransientStepError(f"[{entity.name}] dify: {exc}") from None
            raise MigrationError(entity.name, f"dify: {exc}", rule="dify.error") from None
        finally:
            client.close()
    return dict(vars(stats))


@reusing_connections()
@timed("checkpoint")
def checkpoint_step(target_dsn: str, run: RunContext, entity: EntitySpec) -> dict[str, int]:
    """Reconcile the entity (source = loaded + merged + quarantined) and drop its staging."""
    with errors_without_values(entity.name, "checkpoint"):
        return runs.reconcile(target_dsn, run, entity)


def run_entity(
    target_dsn: str,
    run: RunContext,
    entity: EntitySpec,
    *,
    legacy_dsn: str | None = None,
    limit: QuarantineLimit = QuarantineLimit(),  # noqa: B008 - frozen, immutable default
    storage_settings: StorageSettings | None = None,
    load_path: LoadPath = "auto",
) -> dict[str, int]:
    """Everything after extract for one entity, in order (what one task group does).

    An entity with an object copy reads its Storage settings from
    ``AIRFLOW_CONN_SUPABASE_STORAGE`` unless ``storage_settings`` is given.
    """
    transform_step(target_dsn, run, entity)
    if entity.dedup is not None:
        dedup_step(target_dsn, run, entity)
    validate_step(target_dsn, run, entity, limit=limit)
    if entity.object_copy is not None:
        settings = storage_settings or storage.env_settings(entity.name)
        object_copy_step(target_dsn, run, entity, settings=settings, limit=limit)
    load_step(target_dsn, run, entity, legacy_dsn=legacy_dsn, path=load_path)
    verify_step(target_dsn, run, entity)
    if entity.embedding is not None:
        embed_step(target_dsn, run, entity)
        dify_step(target_dsn, run, entity)
    return checkpoint_step(target_dsn, run, entity)
