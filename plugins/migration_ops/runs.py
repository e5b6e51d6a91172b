"""Run bookkeeping in the ``migration`` schema: runs, checkpoints, reconciliation, gates.

Every function here is idempotent for a given ``run_id``: a retried task rewrites its own
checkpoint row and nothing else, so reruns never duplicate history.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from include.entities.spec import EntitySpec, PhaseSpec
from migration_ops import reports, schema, staging
from migration_ops.db import connect
from migration_ops.errors import GateClosed, MigrationError
from migration_ops.sync import apply as sync_apply

log = logging.getLogger(__name__)

#: ``migration.runs.phase`` of the nightly sync's runs (they span phases 1–4).
SYNC_PHASE = 0


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

    @property
    def incremental(self) -> bool:
        """A sync run: its entities load a delta, not every legacy row."""
        return self.phase == SYNC_PHASE

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


def apply_schema(target_dsn: str, phase: PhaseSpec, *, force: bool = False) -> schema.Applied:
    """Apply the phase's target DDL files, in order, in one transaction (all idempotent).

    Files whose text and catalog are unchanged since their last application are skipped
    (:mod:`migration_ops.schema`); ``force`` applies them all. A lock held elsewhere (a
    backup running) makes the whole transaction wait and start again
    (:func:`~migration_ops.schema.retry_when_busy`).
    """

    def removed_columns(conn: psycopg.Connection[Any]) -> None:
        sync_apply.add_removed_columns(conn, list(phase.entities))

    return schema.apply(
        target_dsn,
        phase.schema_sql,
        application_name=f"migration:schema:phase-{phase.number}",
        force=force,
        then=removed_columns if phase.number == SYNC_PHASE else None,
    )


#: How long a running run of another host may stay silent before it counts as dead.
#: Runs of this host are judged by their process instead (see :func:`owner_is_dead`).
DEFAULT_RUN_LEASE = timedelta(hours=6)


def this_owner() -> str:
    """``host:pid`` of the process doing a run's work right now."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str | None, heartbeat_at: datetime | None, now: datetime) -> bool:
    """Whether the process that last worked on a running run is gone.

    On this host the process is asked directly (a killed ``make migrate`` is dead at once). A
    run driven from another host (a Celery worker) is dead when it has been silent for longer
    than ``MIGRATION_RUN_LEASE_SECONDS`` (default six hours).
    """
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    seconds = os.environ.get("MIGRATION_RUN_LEASE_SECONDS")
    lease = timedelta(seconds=float(seconds)) if seconds else DEFAULT_RUN_LEASE
    return heartbeat_at is None or now - heartbeat_at > lease


def _abandon_dead_runs(conn: psycopg.Connection[Any], phase: PhaseSpec, run_id: str) -> list[str]:
    """Mark the phase's other running runs failed when their process is gone, else refuse.

    Returns:
        the abandoned runs that had reports (to write again, saying how they ended).

    Raises:
        MigrationError: another run of the phase is alive (two live runs never load at once).
    """
    others = conn.execute(
        """
        select run_id, owner, heartbeat_at, now() from migration.runs
        where phase = %s and status = 'running' and run_id <> %s
        for update
        """,
        (phase.number, run_id),
    ).fetchall()
    for other, owner, heartbeat_at, now in others:
        if not owner_is_dead(owner, heartbeat_at, now):
            raise MigrationError(
                f"phase-{phase.number}",
                f"run {other} of this phase is still running (process {owner}); wait for it "
                "to finish or stop it, then start again",
                rule="runs.one_live_run_per_phase",
            )
    reported = []
    for other, owner, _, _ in others:
        reason = f"abandoned: its process {owner or '?'} is gone; superseded by run {run_id}"
        if _end(conn, other, reason):
            reported.append(other)
    return reported


def _demote_unpublished(
    conn: psycopg.Connection[Any], phase_number: int, by: str, emitted: Collection[str]
) -> list[str]:
    """Mark failed the phase's validated runs killed before their Asset was emitted.

    ``publish`` commits ``validated`` as its last act and Airflow then records the Asset, after
    which publish's success callback sets ``published_at``. A validated run without it whose
    process is gone died in between. If Airflow recorded its Asset (``emitted``: the runs
    whose Asset events the calling task read) only the callback was lost: the run is
    confirmed. Otherwise no Asset announced it, so it must not open a gate: it is demoted.

    Returns:
        the demoted runs (publish wrote their reports before committing ``validated``).
    """
    candidates = conn.execute(
        """
        select run_id, owner, heartbeat_at, now() from migration.runs
        where phase = %s and status = 'validated' and published_at is null
        for update
        """,
        (phase_number,),
    ).fetchall()
    dead = [(r, owner) for r, owner, beat, now in candidates if owner_is_dead(owner, beat, now)]
    demoted = []
    for run_id, owner in dead:
        if run_id in emitted:
            conn.execute(
                "update migration.runs set published_at = now() where run_id = %s", (run_id,)
            )
            continue
        _end(
            conn,
            run_id,
            f"unpublished: validated, but its process {owner or '?'} died before its Asset "
            f"was emitted; demoted by {by}",
        )
        demoted.append(run_id)
    return demoted


def _end(conn: psycopg.Connection[Any], run_id: str, reason: str) -> bool:
    """Mark a run another process ended failed, with the reason; its reports go with it.

    The reports are removed before the status changes (a report never says more than the
    status); :func:`_rewrite_reports` writes them again once the change is committed.

    Returns:
        whether the run had reports.
    """
    conn.execute(
        """
        update migration.runs
        set status = 'failed', finished_at = coalesce(finished_at, now()), status_reason = %s
        where run_id = %s
        """,
        (reason, run_id),
    )
    return reports.discard(run_id)


def _rewrite_reports(target_dsn: str, run_ids: list[str]) -> None:
    """Write the reports of runs another process ended, now saying how they ended.

    Best effort: the status is already committed and no stale report contradicts it; a report
    that cannot be written now is written by ``make report``. Logs the error's kind only.
    """
    for run_id in run_ids:
        try:
            reports.write(target_dsn, run_id)
        except Exception as exc:  # noqa: BLE001 - the new run must not fail for an old report
            log.warning("report of ended run %s not rewritten (%s)", run_id, type(exc).__name__)


def _drop_dead_staging(conn: psycopg.Connection[Any], phase: PhaseSpec) -> None:
    """Drop the staging tables that failed (or rolled back) runs of the phase still own.

    A run that did not reconcile an entity never released its staging: the copies of legacy
    rows would stay until the next extract of that entity. The new run drops them first.
    """
    owned = conn.execute(
        """
        delete from migration.staged_entities as s using migration.runs as r
        where r.run_id = s.run_id and r.phase = %s and r.status in ('failed', 'rolled_back')
        returning s.entity
        """,
        (phase.number,),
    ).fetchall()
    for (entity,) in owned:
        staging.drop_entity_tables(conn, entity)


def begin_run(
    target_dsn: str,
    phase: PhaseSpec,
    run_id: str,
    *,
    triggered_by: str,
    params: dict[str, Any],
    emitted: Collection[str] = (),
) -> RunContext:
    """Record the start of a phase run (or find it again when the task is retried).

    A running run of the same phase whose process is dead (a killed ``make migrate``) is
    marked failed as abandoned, so the new run carries on; a live one makes this run refuse.
    A validated run killed before its Asset was emitted is demoted to failed (``emitted``:
    the runs whose Asset Airflow recorded; see :func:`demote_unpublished`). The staging
    tables failed runs of the phase left behind are dropped (no legacy rows at rest).
    """
    with connect(target_dsn, application_name="migration:begin") as conn:
        conn.execute(
            "select pg_advisory_xact_lock(hashtext('migration.runs.phase'), %s)", (phase.number,)
        )
        ended = _abandon_dead_runs(conn, phase, run_id)
        ended += _demote_unpublished(conn, phase.number, f"run {run_id}", emitted)
        _drop_dead_staging(conn, phase)
        row = conn.execute(
            """
            insert into migration.runs
                (run_id, phase, dag_id, triggered_by, params, owner, heartbeat_at)
            values (%s, %s, %s, %s, %s, %s, now())
            on conflict (run_id) do update set
                status = 'running', finished_at = null, status_reason = null,
                owner = excluded.owner, heartbeat_at = now()
            returning as_of
            """,
            (run_id, phase.number, phase.dag_id, triggered_by, json.dumps(params), this_owner()),
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
    _rewrite_reports(target_dsn, ended)
    return RunContext(run_id=run_id, phase=phase.number, as_of=as_of.isoformat())


def require_running(conn: psycopg.Connection[Any], run: RunContext, *, entity: str) -> None:
    """Refuse to work for a run that is no longer running; else record this process's heartbeat.

    A run abandoned by a newer one (its process was taken for dead) or already finished must
    not touch the target again: its tasks fail with the reason instead.

    Raises:
        MigrationError: the run is not ``running``.
    """
    row = conn.execute(
        """
        update migration.runs set owner = %s, heartbeat_at = now()
        where run_id = %s and status = 'running'
        returning run_id
        """,
        (this_owner(), run.run_id),
    ).fetchone()
    if row is not None:
        return
    state = conn.execute(
        "select status, status_reason from migration.runs where run_id = %s", (run.run_id,)
    ).fetchone()
    status, reason = state if state else ("unknown", None)
    raise MigrationError(
        entity,
        f"run {run.run_id} is '{status}'"
        + (f" ({reason})" if reason else "")
        + ": start a new run",
        rule="runs.run_is_running",
    )


def record_snapshot(target_dsn: str, run: RunContext, taken_at: datetime, txid: str) -> None:
    """Keep the legacy snapshot every entity of the run was extracted from."""
    with connect(target_dsn, application_name="migration:extract") as conn:
        conn.execute(
            "update migration.runs set snapshot_at = %s, legacy_snapshot = %s where run_id = %s",
            (taken_at, txid, run.run_id),
        )


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
    """Write the entity's reconciliation row from its checkpoint and drop its staging.

    The table's CHECK constraint enforces ``source = loaded + merged + quarantined``. The
    entity's staging tables go in the same transaction: once reconciled, no legacy rows of it
    remain outside ``public`` and ``migration``.

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
        # Reconciled: the staged legacy rows have served their purpose (no PHI at rest).
        staging.release(conn, run.run_id, entity)
    return counts


def reconciled_at(target_dsn: str, run: RunContext, phase: PhaseSpec) -> datetime:
    """The time the run finishes, once every entity of the phase reconciled; else mark it failed.

    Raises:
        MigrationError: an entity is not reconciled (the run is marked failed first).
    """
    with connect(target_dsn, application_name="migration:finish") as conn:
        rows = conn.execute(
            "select entity from migration.reconciliation where run_id = %s", (run.run_id,)
        ).fetchall()
        missing = sorted({e.name for e in phase.entities} - {r[0] for r in rows})
        if missing:
            conn.execute(
                "update migration.runs set status = 'failed', finished_at = now() "
                "where run_id = %s",
                (run.run_id,),
            )
        now = conn.execute("select now()").fetchone()
    if missing:
        raise MigrationError(f"phase-{phase.number}", f"entities not reconciled: {missing}")
    assert now is not None
    return now[0]


def finish_run(
    target_dsn: str,
    run: RunContext,
    phase: PhaseSpec,
    *,
    finished_at: datetime | None = None,
    asset: bool = False,
) -> str:
    """Mark the run validated when every entity of the phase reconciled, else failed.

    Args:
        target_dsn: the target.
        run: the run.
        phase: its phase.
        finished_at: what :func:`reconciled_at` returned (the reports already carry it).
        asset: an Asset is emitted after this commit (``publish``): ``published_at`` stays
            null until :func:`confirm_published`; without, the run is published at once.

    Raises:
        MigrationError: an entity is not reconciled, or the run is no longer running (it was
            abandoned by a newer run meanwhile).
    """
    finished = finished_at or reconciled_at(target_dsn, run, phase)
    with connect(target_dsn, application_name="migration:finish") as conn:
        row = conn.execute(
            """
            update migration.runs
            set status = 'validated', finished_at = %s, owner = %s, heartbeat_at = now(),
                published_at = case when %s then null else now() end
            where run_id = %s and status = 'running'
            returning run_id
            """,
            (finished, this_owner(), asset, run.run_id),
        ).fetchone()
        if row is None:
            require_running(conn, run, entity=f"phase-{phase.number}")  # raises, naming why
    return "validated"


def confirm_published(target_dsn: str, run_id: str) -> None:
    """Record that the validated run's Asset was emitted (``publish``'s success callback)."""
    with connect(target_dsn, application_name="migration:finish") as conn:
        conn.execute(
            "update migration.runs set published_at = now() "
            "where run_id = %s and status = 'validated'",
            (run_id,),
        )


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


def demote_unpublished(
    target_dsn: str, phase_number: int, by: str, emitted: Collection[str] = ()
) -> list[str]:
    """Demote the phase's validated runs killed before their Asset (see ``_demote_unpublished``).

    Args:
        target_dsn: the target.
        phase_number: the phase.
        by: who demotes (named in the reason).
        emitted: ``<dag id>__<Airflow run id>`` of the runs whose Asset events Airflow holds
            (read by the calling task through its inlets); empty outside Airflow, where no
            run emits an Asset and every run is published when it validates.

    Returns:
        the runs demoted (their reports rewritten).
    """
    if not _schema_exists(target_dsn):
        return []
    with connect(target_dsn, application_name="migration:gate") as conn:
        demoted = _demote_unpublished(conn, phase_number, by, emitted)
    _rewrite_reports(target_dsn, demoted)
    return demoted


def _unvalidated(target_dsn: str, phase_number: int, emitted: Collection[str]) -> str | None:
    """Why ``phase_number`` does not count as validated (``None`` when its latest run did).

    A validated run killed before its Asset was emitted is demoted first: it never counts.
    """
    demote_unpublished(target_dsn, phase_number, "the gate", emitted)
    status = latest_run_status(target_dsn, phase_number)
    if status == "validated":
        return None
    return "has never run" if status is None else f"latest run is '{status}'"


def check_gate(target_dsn: str, phase: PhaseSpec, emitted: Collection[str] = ()) -> None:
    """Refuse to run a phase before the previous phase's latest run has validated.

    The sync (phase 0) needs every phase validated: it follows a full load. ``emitted``: see
    :func:`demote_unpublished`.

    Raises:
        GateClosed: with a message saying which phase to run (or fix) first.
    """
    from include.entities import LEGACY_PHASES

    if phase.number == SYNC_PHASE:
        for earlier in LEGACY_PHASES:
            if reason := _unvalidated(target_dsn, earlier.number, emitted):
                raise GateClosed(
                    f"the sync cannot start: phase {earlier.number} {reason}. The sync follows "
                    "a full load: run the phases until phase 4 validates, then sync."
                )
        return
    if phase.number == 1:
        return
    previous = phase.number - 1
    if reason := _unvalidated(target_dsn, previous, emitted):
        raise GateClosed(
            f"phase {phase.number} cannot start: phase {previous} {reason}. "
            f"Run migrate_phase_{previous}_* until it validates, then trigger this phase again."
        )
