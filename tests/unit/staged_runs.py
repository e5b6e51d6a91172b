"""Run a phase through the engine's own steps from staging tables filled by hand (no extract)."""

from __future__ import annotations

from include.entities.spec import PhaseSpec
from migration_ops import pipeline, runs
from migration_ops.db import connect
from migration_ops.validate import QuarantineLimit


def run_phase_from_staging(dsn: str, phase: PhaseSpec, run_id: str) -> runs.RunContext:
    """Transform, validate, load and reconcile every entity of ``phase`` from its staged rows.

    The rule tests fill ``staging.<entity>__<legacy table>`` with hand-made edge cases; the
    primary table's row count stands in for the extract's ``source_rows``.
    """
    run = runs.begin_run(dsn, phase, run_id, triggered_by="pytest", params={})
    for entity in phase.ordered():
        with connect(dsn) as conn:
            staged = conn.execute(
                f"select count(*) from staging.{entity.name}__{entity.primary_source.table}"
            ).fetchone()
        assert staged is not None
        runs.record_stage(dsn, run, entity, "extracted", source_rows=staged[0])
        pipeline.transform_step(dsn, run, entity)
        pipeline.validate_step(dsn, run, entity, limit=QuarantineLimit(fraction=1.0))
        pipeline.load_step(dsn, run, entity)
        pipeline.checkpoint_step(dsn, run, entity)
    runs.finish_run(dsn, run, phase)
    return run
