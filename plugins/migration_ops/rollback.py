"""Roll a phase back: delete exactly the rows it loaded, or restore the backup taken before it.

Two modes, one contract: afterwards the target's ``public`` schema is as it was before the
phase ran, the ``migration`` schema keeps all its history (runs, checkpoints, quarantine,
reconciliation, audit log, backups) and records the rollback, and the phase can run again
to the same state.

- ``delete``: later phases first, within a phase children before parents (the reverse of
  :meth:`PhaseSpec.ordered`), one transaction per entity: the entity's
  ``Rollback.before_sql`` files, then one set-based delete of the rows carrying a legacy id
  (or of every row, for tables the phase's schema seeds again). Rows of earlier phases are
  not touched. The schema objects stay.
- ``restore``: the newest verified backup taken before the phase first ran replaces the whole
  ``public`` schema, objects and rows, in one transaction (``psql --single-transaction``).
  Refused when an earlier phase ran after that backup was taken: restoring would undo it.

Rolling back phase N always covers every later phase as well (their rows depend on N's);
while a later phase still has rows this is refused unless ``cascade`` is set. The runs of the
covered phases are marked ``rolled_back``, so the gate keeps later phases closed until the
phase validates again.

Plain functions, no Airflow: ``dags/rollback_phase.py`` wires them.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from include.entities import PHASES, get_phase
from include.entities.spec import EntitySpec, PhaseSpec
from migration_ops import backup, schema
from migration_ops.db import connect, qualified, read_sql, run_sql_file, scalar, set_run_settings
from migration_ops.errors import MigrationError
from migration_ops.settings import SQL_DIR

log = logging.getLogger(__name__)

Mode = Literal["delete", "restore"]
MODES: tuple[str, ...] = ("delete", "restore")
#: Entity name used in errors raised here.
ENTITY = "rollback"
#: How long a rollback waits for readers and writers to release a table before giving up.
LOCK_TIMEOUT = "1min"


class RollbackRefused(MigrationError):
    """A rollback that would lose data, or cannot be done as asked; nothing was changed."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(ENTITY, message, rule=rule)


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback will do, computed from the target's current state.

    Attributes:
        phase: the phase asked for.
        mode: ``delete`` or ``restore``.
        cascade: whether later phases with rows may be rolled back too.
        phases: the phases covered, latest first (``phase`` and every later one).
        rows: per entity (in deletion order), the rows its rollback removes now.
    """

    phase: int
    mode: str
    cascade: bool
    phases: tuple[int, ...]
    rows: dict[str, int]

    def to_xcom(self) -> dict[str, Any]:
        """Plain-dict form (ids and counts only)."""
        return {**asdict(self), "phases": list(self.phases)}


def covered_phases(phase_number: int) -> list[PhaseSpec]:
    """The phase and every later one, latest first: the order rows are removed in."""
    return sorted((p for p in PHASES if p.number >= phase_number), key=lambda p: -p.number)


def deletion_order(phase_number: int) -> list[EntitySpec]:
    """Entities of the covered phases, later phases first, children before parents."""
    return [
        entity for phase in covered_phases(phase_number) for entity in reversed(phase.ordered())
    ]


def _table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    return scalar(conn, "select to_regclass(%s) is not null", (table,)) is True


def _entity_statement(path: str, entity: EntitySpec) -> sql.Composed:
    return sql.SQL(read_sql(path)).format(
        target=qualified(entity.target_table), key=sql.Identifier(entity.key)
    )


def _rollback_settings(conn: psycopg.Connection[Any], entity: EntitySpec) -> None:
    settings: dict[str, object] = {
        "phase": entity.phase,
        "rollback_all_rows": "true" if entity.rollback.all_rows else "false",
    }
    if entity.embedding is not None:
        # phase 5's before_sql removes this entity's vectors only, never another entity's
        settings["embedding_entity"] = entity.embedding.queue_entity
        settings["embedding_vectors"] = entity.embedding.vectors_table
    set_run_settings(conn, settings)


def entity_rows(conn: psycopg.Connection[Any], entity: EntitySpec) -> int:
    """Rows a rollback of the entity's phase would delete (0 when its table does not exist)."""
    if not _table_exists(conn, entity.target_table):
        return 0
    _rollback_settings(conn, entity)
    return int(scalar(conn, _entity_statement("rollback/count_entity_rows.sql", entity)))


def plan_rollback(
    target_dsn: str, phase_number: int, *, mode: str, cascade: bool, confirm: str | None = None
) -> RollbackPlan:
    """Check that the rollback may go ahead and say what it will remove.

    Args:
        target_dsn: the target database.
        phase_number: the phase to roll back.
        mode: ``delete`` or ``restore``.
        cascade: allow rolling back later phases that still have rows.
        confirm: when given, must be the phase number (a guard against accidents).

    Raises:
        RollbackRefused: unknown mode or phase, wrong confirmation, a run in progress, or
            later phases with rows and no cascade; the message says what to do.
    """
    if mode not in MODES:
        raise RollbackRefused(f"mode must be one of {MODES}, not {mode!r}", rule="rollback.mode")
    if confirm is not None and confirm.strip() != str(phase_number):
        raise RollbackRefused(
            f"confirm must be the phase number ({phase_number}) to roll phase {phase_number} back",
            rule="rollback.confirm",
        )
    try:
        get_phase(phase_number)
    except KeyError:
        raise RollbackRefused(
            f"phase {phase_number} does not exist (known: {[p.number for p in PHASES]})",
            rule="rollback.phase",
        ) from None
    with connect(target_dsn, application_name="migration:rollback:plan") as conn:
        rows = {entity.name: entity_rows(conn, entity) for entity in deletion_order(phase_number)}
        running = conn.execute(
            "select run_id from migration.runs where status = 'running' and (phase >= %s or %s)",
            (phase_number, mode == "restore"),
        ).fetchall()
        _check_dify_reachable(conn, phase_number)
    if running:
        raise RollbackRefused(
            f"runs in progress: {[r[0] for r in running]}. Wait for them to finish (or mark a "
            "run whose worker died as failed) before rolling back",
            rule="rollback.run_in_progress",
        )
    phases = covered_phases(phase_number)
    later = {
        p.number: total
        for p in phases
        if p.number > phase_number and (total := sum(rows[e.name] for e in p.entities))
    }
    if later and not cascade:
        described = ", ".join(f"phase {n} ({total} rows)" for n, total in sorted(later.items()))
        raise RollbackRefused(
            f"phase {phase_number} cannot be rolled back while later phases still have rows: "
            f"{described}. Roll those back first, or set cascade to roll them back too",
            rule="rollback.later_phase_has_rows",
        )
    return RollbackPlan(phase_number, mode, cascade, tuple(p.number for p in phases), rows)


@contextmanager
def _exclusive(target_dsn: str) -> Iterator[None]:
    """Hold the schema lock for the whole rollback: a phase starting now waits in ``begin``."""
    with connect(target_dsn, application_name="migration:rollback:lock", autocommit=True) as conn:
        conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal("5min")))
        conn.execute("select pg_advisory_lock(hashtext('migration.apply_schema'))")
        try:
            yield
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('migration.apply_schema'))")


def _audit(
    conn: psycopg.Connection[Any],
    actor: str,
    action: str,
    plan: RollbackPlan,
    details: dict[str, Any],
) -> None:
    """Append the rollback to ``migration.audit_log``: the plan and details, ids and counts."""
    conn.execute(
        "insert into migration.audit_log (actor, action, phase, params) values (%s, %s, %s, %s)",
        (actor, action, plan.phase, json.dumps({**plan.to_xcom(), **details}, default=str)),
    )


def _start(
    target_dsn: str, actor: str, action: str, plan: RollbackPlan, details: dict[str, Any]
) -> None:
    """Record that a rollback started (a killed one shows as started and never finished)."""
    with connect(target_dsn, application_name="migration:rollback:audit") as conn:
        _audit(conn, actor, f"{action}_started", plan, details)


def _finish(
    target_dsn: str, actor: str, action: str, plan: RollbackPlan, details: dict[str, Any]
) -> list[str]:
    """Mark the covered phases' runs rolled back and record the rollback, in one transaction."""
    with connect(target_dsn, application_name="migration:rollback:finish") as conn:
        rows = conn.execute(
            """
            update migration.runs
            set status = 'rolled_back', finished_at = coalesce(finished_at, now())
            where phase = any(%s) and status <> 'rolled_back'
            returning run_id
            """,
            (list(plan.phases),),
        ).fetchall()
        marked = [str(r[0]) for r in rows]
        _audit(conn, actor, action, plan, {**details, "runs_rolled_back": marked})
    return marked


# ------------------------------------------------------------------------------ delete
def delete_entity_rows(target_dsn: str, entity: EntitySpec) -> int:
    """Delete what the entity loaded, in one transaction; return the number of rows deleted."""
    with connect(target_dsn, application_name=f"migration:rollback:{entity.name}") as conn:
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        if not _table_exists(conn, entity.target_table):
            return 0
        _rollback_settings(conn, entity)
        if entity.embedding is not None:
            _delete_dify_documents(target_dsn, entity)
        for path in entity.rollback.before_sql:
            run_sql_file(conn, path)
        deleted = conn.execute(
            _entity_statement("rollback/delete_entity_rows.sql", entity)
        ).rowcount
    log.info("rollback: %s: %d rows deleted", entity.name, deleted)
    return deleted


def _mapped_documents(conn: psycopg.Connection[Any], entity: EntitySpec) -> int:
    """Phase 5: how many Dify documents the entity's mapping rows name (0 before phase 5)."""
    if entity.embedding is None or not _table_exists(conn, "migration.dify_documents"):
        return 0
    return int(
        scalar(
            conn,
            "select count(*) from migration.dify_documents where entity = %s",
            (entity.embedding.queue_entity,),
        )
    )


def _dify_unreachable(entity: EntitySpec, mapped: int) -> RollbackRefused:
    return RollbackRefused(
        f"{entity.name}: {mapped} Dify documents are mapped but the dify_knowledge connection "
        "is not configured, so they cannot be deleted; configure it (or delete the documents "
        "in Dify and their rows in migration.dify_documents) and roll back again",
        rule="rollback.dify_documents_unreachable",
    )


def _check_dify_reachable(conn: psycopg.Connection[Any], phase_number: int) -> None:
    """Refuse, before anything changes, a rollback that would leave Dify documents behind."""
    from migration_ops.ai import dify

    for entity in deletion_order(phase_number):
        mapped = _mapped_documents(conn, entity)
        if not mapped:
            continue
        configured = dify.configured_client()
        if configured is None:
            raise _dify_unreachable(entity, mapped)
        configured[0].close()


def _delete_dify_documents(target_dsn: str, entity: EntitySpec) -> None:
    """Phase 5: delete the entity's Dify documents before its rows (refused without Dify)."""
    from migration_ops.ai import dify, dify_sync

    if entity.embedding is None:
        return
    configured = dify.configured_client()
    if configured is None:
        with connect(target_dsn, application_name=f"migration:rollback:{entity.name}") as conn:
            mapped = _mapped_documents(conn, entity)
        if mapped:
            raise _dify_unreachable(entity, mapped)
        return
    client, _ = configured
    try:
        deleted = dify_sync.delete_all(target_dsn, entity.embedding, client)
    finally:
        client.close()
    log.info("rollback: %s: %d Dify documents deleted", entity.name, deleted)


def delete_phase_rows(
    target_dsn: str, plan: RollbackPlan, *, actor: str, note: str = ""
) -> dict[str, Any]:
    """The ``delete`` mode: remove the covered phases' rows entity by entity.

    A killed rollback retried converges: each entity's delete is atomic and deleting again
    finds nothing; the runs are marked only once every entity is done.
    """
    _start(target_dsn, actor, "rollback", plan, {"note": note})
    deleted = {
        entity.name: delete_entity_rows(target_dsn, entity) for entity in deletion_order(plan.phase)
    }
    runs = _finish(target_dsn, actor, "rollback", plan, {"deleted": deleted, "note": note})
    return {**plan.to_xcom(), "deleted": deleted, "runs_rolled_back": len(runs)}


# ------------------------------------------------------------------------------ restore
def _check_restorable(conn: psycopg.Connection[Any], phase_number: int) -> backup.Backup:
    """The restore point of the phase, if restoring it loses nothing of earlier phases."""
    point = backup.restore_point(conn, phase_number)
    if point is None or point.snapshot_at is None or point.location is None:
        raise RollbackRefused(
            f"no verified backup was taken before phase {phase_number} first ran (since its last "
            "rollback); use mode=delete",
            rule="rollback.no_restore_point",
        )
    newer = conn.execute(
        """
        select distinct phase from migration.runs
        where phase < %s and status <> 'rolled_back' and started_at > %s
        order by phase
        """,
        (phase_number, point.snapshot_at),
    ).fetchall()
    if newer:
        raise RollbackRefused(
            f"phases {[r[0] for r in newer]} ran after backup {point.backup_id} was taken; "
            "restoring it would undo them. Use mode=delete",
            rule="rollback.earlier_phase_ran_since_backup",
        )
    return point


def _restore_public(target_dsn: str, archive: Path, backup_id: int) -> None:
    """Replace the ``public`` schema with the archive's, in one transaction.

    The archive's ``public`` part is rendered to SQL first (so a damaged archive can never
    feed half a script to the database), without what the connecting role may not restore
    (other roles' default privileges, see :func:`backup.restore_list`; they are set-up the
    target keeps, never dropped by the restore). Then psql runs ``restore_prepare.sql``
    (saves the views other schemas build on ``public``, suspends the role's own default
    privileges, then empties ``public``), that script and ``restore_finish.sql`` (recreates
    the saved views, puts the default privileges back) under ``--single-transaction`` and
    ``ON_ERROR_STOP``. None of it needs superuser.
    """
    with (
        tempfile.TemporaryDirectory(prefix="migration-restore-", dir=backup.work_dir()) as tmp,
        backup.restore_list(archive, target_dsn) as listing,
    ):
        script = Path(tmp) / "public.sql"
        rendered = subprocess.run(
            [
                backup.tool_path("pg_restore"),
                "--schema=public",
                f"--use-list={listing.path}",
                f"--file={script}",
                str(archive),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if rendered.returncode != 0:
            raise MigrationError(
                ENTITY,
                f"cannot read backup {backup_id}: {backup.tool_error_summary(rendered.stderr)}",
                rule="rollback.restore",
            )
        backup.run_tool(
            [
                backup.tool_path("psql"),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--single-transaction",
                f"--file={SQL_DIR / 'rollback' / 'restore_prepare.sql'}",
                f"--file={script}",
                f"--file={SQL_DIR / 'rollback' / 'restore_finish.sql'}",
            ],
            dsn=target_dsn,
            what=f"restore of backup {backup_id} into the public schema",
            rule="rollback.restore",
            extra_env={
                "PGOPTIONS": f"-c lock_timeout={LOCK_TIMEOUT} -c client_min_messages=warning"
            },
        )


def restore_backup(
    target_dsn: str, plan: RollbackPlan, *, actor: str, note: str = ""
) -> dict[str, Any]:
    """The ``restore`` mode: put back the ``public`` schema of the phase's restore point.

    Downtime: from the start of the transaction to its commit, every ``public`` table is
    locked (readers wait). The ``migration`` schema is not restored: its history stays and
    records the restore. Retried after a kill, it restores the same backup again.

    Raises:
        RollbackRefused: no restore point, or an earlier phase ran after it was taken.
        MigrationError: the file fails its checksum, the restore fails (nothing changed), or
            the restored tables do not hold the backup's row counts.
    """
    with connect(target_dsn, application_name="migration:rollback:plan") as conn:
        point = _check_restorable(conn, plan.phase)
    backup.check_tool_versions(target_dsn, ["pg_restore", "psql"])
    assert point.location is not None
    _start(target_dsn, actor, "restore", plan, {"backup_id": point.backup_id, "note": note})
    # What the covered phases loaded outside public (phase 5's queue) is not in the dump:
    # removed first, exactly as the delete mode removes it (its before_sql also drops what
    # outside public depends on public's row types, which would make the restore refuse).
    outside = {
        entity.name: delete_entity_rows(target_dsn, entity)
        for entity in deletion_order(plan.phase)
        if not entity.target_table.startswith("public.")
    }
    with backup.store_for(point.location).opened(point.location) as archive:
        backup.check_digest(archive, point)
        _restore_public(target_dsn, archive, point.backup_id)
    with connect(target_dsn, application_name="migration:rollback:check") as conn:
        expected = {t: n for t, n in point.row_counts.items() if t.startswith("public.")}
        restored = backup.count_rows(conn, ["public"])
    if restored != expected:
        raise MigrationError(
            ENTITY,
            f"after restoring backup {point.backup_id} the public tables do not hold its row "
            "counts",
            rule="rollback.restore_counts",
        )
    details = {"backup_id": point.backup_id, "note": note, "deleted_outside_public": outside}
    runs = _finish(target_dsn, actor, "restore", plan, details)
    return {**plan.to_xcom(), "backup_id": point.backup_id, "runs_rolled_back": len(runs)}


# ------------------------------------------------------------------------------ entry point
def roll_back(
    target_dsn: str,
    phase_number: int,
    *,
    mode: str,
    cascade: bool = False,
    actor: str,
    note: str = "",
    confirm: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Plan and carry out a rollback of ``phase_number`` (see the module docstring).

    Args:
        target_dsn: the target database.
        phase_number: the phase to roll back (with every later one).
        mode: ``delete`` or ``restore``.
        cascade: allow rolling back later phases that still have rows.
        actor: who asked (kept in ``migration.audit_log``).
        note: why (kept in the audit log); no patient data.
        confirm: when given, must be the phase number.
        dry_run: only check and plan; change nothing.

    Returns:
        The plan plus what was done: rows deleted per entity, or the restored backup's id,
        and how many runs were marked ``rolled_back``. Ids and counts only.
    """
    backup.ensure_manifest(target_dsn)
    with _exclusive(target_dsn):
        plan = plan_rollback(target_dsn, phase_number, mode=mode, cascade=cascade, confirm=confirm)
        if dry_run:
            return plan.to_xcom()
        # Before anything changes: the next phase run applies its DDL again, whether this
        # rollback finishes or not (a delete empties tables the DDL seeds; a restore puts
        # back the objects of the backup).
        schema.forget(target_dsn)
        if mode == "delete":
            return delete_phase_rows(target_dsn, plan, actor=actor, note=note)
        return restore_backup(target_dsn, plan, actor=actor, note=note)
