"""Run bookkeeping in the ``migration`` schema: runs, checkpoints, reconciliation, gates.

Every function here is idempotent for a given ``run_id``: a retried task rewrites its own
checkpoint row and nothing else, so reruns never duplicate history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.entities.spec import EntitySpec, PhaseSpec
from migration_ops.db import connect, run_sql_file
from migration_ops.errors import GateClosed, MigrationError


@dataclass(frozen=True)
class RunContext:
    """What every task of a phase run needs; small enough for XCom.

    Attributes:
        run_id: migration run id (``<dag_id>__<airflow run id>``).
        phase: phase number.
        as_of: the run's reference time (ISO 8601), fixed when the run begins.
    """

    run_id: str
    phase: int
    as_of: str

    def settings(self) -> dict[str, object]:
        """Values exposed to SQL files as ``current_setting('migration.<key>')``."""
        return {"run_id": self.run_id, "phase": self.phase, "as_of": self.as_of}

    def to_xcom(self) -> dict[str, Any]:
        """Plain-dict form for XCom."""
        return {"run_id": self.run_id, "phase": self.phase, "as_of": self.as_of}

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> RunContext:
        """Inverse of :meth:`to_xcom`."""
        return cls(run_id=value["run_id"], phase=int(value["phase"]), as_of=value["as_of"])


def apply_schema(target_dsn: str, phase: PhaseSpec) -> None:
    """Apply the phase's target DDL files, in order, in one transaction (all idempotent)."""
    with connect(target_dsn, application_name=f"migration:schema:phase-{phase.number}") as conn:
        # Serialise concurrent schema applications (two phases started together).
        conn.execute("select pg_advisory_xact_lock(hashtext('migration.apply_schema'))")
        for path in phase.schema_sql:
            run_sql_file(conn, path)


def begin_run(
    target_dsn: str, phase: PhaseSpec, run_id: str, *, triggered_by: str, params: dict[str, Any]
) -> RunContext:
    """Record the start of a phase run (or find it again when the task is retried)."""
    with connect(target_dsn, application_name="migration:begin") as conn:
        row = conn.execute(
            """
            insert into migration.runs (run_id, phase, dag_id, triggered_by, params)
            values (%s, %s, %s, %s, %s)
            on conflict (run_id) do update set status = 'running', finished_at = null
            returning as_of
            """,
            (run_id, phase.number, phase.dag_id, triggered_by, json.dumps(params)),
        ).fetchone()
        assert row is not None
        as_of: datetime = row[0]
        conn.execute(
            """
            insert into migration.audit_log (actor, action, phase, run_id, params)
            values (%s, 'run_phase', %s, %s, %s)
            """,
            (triggered_by, phase.number, run_id, json.dumps(params)),
        )
    return RunContext(run_id=run_id, phase=phase.number, as_of=as_of.isoformat())


def record_stage(
    target_dsn: str, run: RunContext, entity: EntitySpec, stage: str, **counts: int | bool
) -> None:
    """Upsert the entity's checkpoint row at ``stage`` with the given counts."""
    columns = ["stage", *counts]
    values = [stage, *counts.values()]
    assignments = ", ".join(f"{c} = excluded.{c}" for c in columns)
    with connect(target_dsn, application_name=f"migration:checkpoint:{entity.name}") as conn:
        conn.execute(
            f"""
            insert into migration.checkpoints (run_id, entity, phase, {", ".join(columns)})
            values (%s, %s, %s, {", ".join(["%s"] * len(values))})
            on conflict (run_id, entity) do update set {assignments}, updated_at = now()
            """,  # noqa: S608 - column names come from this module's callers, values are bound
            (run.run_id, entity.name, run.phase, *values),
        )


def reconcile(target_dsn: str, run: RunContext, entity: EntitySpec) -> dict[str, int]:
    """Write the entity's reconciliation row from its checkpoint.

    The table's CHECK constraint enforces ``source = loaded + merged + quarantined``.

    Raises:
        MigrationError: the entity has not loaded in this run, or the counts do not balance.
    """
    with connect(target_dsn, application_name=f"migration:reconcile:{entity.name}") as conn:
        row = conn.execute(
            """
            select stage, source_rows, loaded_rows, merged_rows, quarantined_rows
            from migration.checkpoints where run_id = %s and entity = %s
            """,
            (run.run_id, entity.name),
        ).fetchone()
        if row is None or row[0] not in ("loaded", "reconciled"):
            raise MigrationError(
                entity.name, f"cannot reconcile: entity is at stage {row and row[0]}"
            )
        counts = dict(
            zip(
                ("source_rows", "loaded_rows", "merged_rows", "quarantined_rows"),
                row[1:],
                strict=True,
            )
        )
        if (
            counts["source_rows"]
            != counts["loaded_rows"] + counts["merged_rows"] + counts["quarantined_rows"]
        ):
            raise MigrationError(
                entity.name,
                "reconciliation does not balance: "
                + ", ".join(f"{k}={v}" for k, v in counts.items()),
                rule="reconciliation.source_equals_loaded_merged_quarantined",
            )
        conn.execute(
            """
            insert into migration.reconciliation
                (run_id, phase, entity, source_rows, loaded_rows, merged_rows, quarantined_rows)
            values (%s, %s, %s, %s, %s, %s, %s)
            on conflict (run_id, entity) do update set
                source_rows = excluded.source_rows, loaded_rows = excluded.loaded_rows,
                merged_rows = excluded.merged_rows, quarantined_rows = excluded.quarantined_rows,
                recorded_at = now()
            """,
            (run.run_id, run.phase, entity.name, *counts.values()),
        )
        conn.execute(
            "update migration.checkpoints set stage = 'reconciled', updated_at = now() "
            "where run_id = %s and entity = %s",
            (run.run_id, entity.name),
        )
    return counts


def finish_run(target_dsn: str, run: RunContext, phase: PhaseSpec) -> str:
    """Mark the run validated when every entity of the phase reconciled, else failed."""
    with connect(target_dsn, application_name="migration:finish") as conn:
        rows = conn.execute(
            "select entity from migration.reconciliation where run_id = %s", (run.run_id,)
        ).fetchall()
        reconciled = {r[0] for r in rows}
        missing = sorted({e.name for e in phase.entities} - reconciled)
        status = "failed" if missing else "validated"
        conn.execute(
            "update migration.runs set status = %s, finished_at = now() where run_id = %s",
            (status, run.run_id),
        )
    if missing:
        raise MigrationError(f"phase-{phase.number}", f"entities not reconciled: {missing}")
    return status


def mark_failed(target_dsn: str, run_id: str) -> bool:
    """Record that a run failed; return whether the run had been recorded at all."""
    if not _schema_exists(target_dsn):
        return False
    with connect(target_dsn, application_name="migration:finish") as conn:
        cursor = conn.execute(
            "update migration.runs set status = 'failed', finished_at = now() where run_id = %s",
            (run_id,),
        )
        return cursor.rowcount > 0


def _schema_exists(target_dsn: str) -> bool:
    with connect(target_dsn, application_name="migration:gate") as conn:
        row = conn.execute("select to_regclass('migration.runs')").fetchone()
    return row is not None and row[0] is not None


def latest_run_status(target_dsn: str, phase_number: int) -> str | None:
    """Status of the most recent run of a phase, or ``None`` if it never ran."""
    if not _schema_exists(target_dsn):
        return None
    with connect(target_dsn, application_name="migration:gate") as conn:
        row = conn.execute(
            "select status from migration.runs where phase = %s order by started_at desc limit 1",
            (phase_number,),
        ).fetchone()
    return None if row is None else str(row[0])


def check_gate(target_dsn: str, phase: PhaseSpec) -> None:
    """Refuse to run a phase before the previous phase's latest run has validated.

    Raises:
        GateClosed: with a message saying which phase to run (or fix) first.
    """
    if phase.number == 1:
        return
    previous = phase.number - 1
    status = latest_run_status(target_dsn, previous)
    if status != "validated":
        state = "has never run" if status is None else f"latest run is '{status}'"
        raise GateClosed(
            f"phase {phase.number} cannot start: phase {previous} {state}. "
            f"Run migrate_phase_{previous}_* until it validates, then trigger this phase again."
        )
