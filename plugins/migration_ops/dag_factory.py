"""Builds one DAG per migration phase from its entity specs.

Shape of every phase DAG::

    gate (phase ≥ 2; preflight in phase 1) → backup (dump → verify) → begin
        → extract (one legacy snapshot)
        → [entity task groups in dependency order] → publish ⇒ Asset
                                                   ↘ record_failure (unless published)
                                                   ⇒ sign_off (always, last)

Each entity task group is ``transform → validate → load → verify → checkpoint``, with
``copy_objects`` between validate and load for an entity whose spec copies bytes to Storage
(files) and ``dedup`` between transform and validate for one whose spec links duplicates
(profiles). A child entity's group starts after its parents' groups (foreign keys resolve to loaded
rows). ``publish`` emits the phase's Asset only when every entity reconciled, which is
what schedules the next phase; the ``gate`` task additionally refuses a manual trigger of
a phase whose predecessor has not validated. The ``backup`` group dumps the target and proves
the dump by a test restore before anything changes; a backup that fails verification fails
the run before ``begin`` (see ``docs/decisions/0004-backup-and-rollback.md``).

Nothing here touches a database at import time: task bodies import and connect lazily.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
    TaskGroup,
    TriggerRule,
    get_current_context,
    task,
)

from include.dedup.model import PATIENT_LINK_THRESHOLD, PATIENT_REVIEW_THRESHOLD
from include.entities import get_entity, get_phase
from include.entities.spec import EntitySpec, PhaseSpec
from migration_ops.errors import value_free_task
from migration_ops.pools import TARGET_POOL
from migration_ops.runs import SYNC_PHASE
from migration_ops.settings import LEGACY_CONN_ID, TARGET_CONN_ID

#: Retry what can heal (a dropped connection, a killed worker); fail at once on what cannot:
#: schema drift, a failed suite or a closed gate give the same answer on every attempt.
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=["migration_ops.errors.MigrationError", "migration_ops.errors.GateClosed"],
            action=RetryAction.FAIL,
            reason="deterministic: fix the data, the spec or the previous phase, then rerun",
        ),
    ],
)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-migration",
    "retries": 2,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "retry_policy": RETRY_POLICY,
}

PARAMS = {
    "max_quarantine_fraction": Param(
        0.05,
        type="number",
        minimum=0,
        maximum=1,
        description=(
            "Fail an entity when more than this share of its rows is quarantined (and more than "
            "quarantine_allowance rows): a systematic defect must stop the migration."
        ),
    ),
    "quarantine_allowance": Param(
        25,
        type="integer",
        minimum=0,
        description="Quarantined rows per entity that never fail the run, whatever their share.",
    ),
    "dedup_link_threshold": Param(
        PATIENT_LINK_THRESHOLD,
        type="number",
        minimum=0,
        maximum=1,
        description=(
            "Patients at or above this match probability are linked to one survivor "
            "(linked, not destroyed; docs/dedup.md)."
        ),
    ),
    "dedup_review_threshold": Param(
        PATIENT_REVIEW_THRESHOLD,
        type="number",
        minimum=0,
        maximum=1,
        description="Pairs from here up to the link threshold go to migration.dedup_review.",
    ),
    "dedup_unlink": Param(
        [],
        type="array",
        items={"type": "integer"},
        description=(
            "auth_user ids: undo the linked patient cluster of each before de-duplicating; "
            "its pairs are kept apart from then on (migration.dedup_decisions)."
        ),
    ),
    "load_path": Param(
        "auto",
        type="string",
        enum=["auto", "upsert", "bulk"],
        description=(
            "auto: an entity whose target table is empty loads by the bulk path (plain insert, "
            "indexes and foreign keys rebuilt after it, one transaction), later runs upsert; "
            "upsert: always upsert; bulk: always the bulk path (a large reload)."
        ),
    ),
    "note": Param(
        "",
        type="string",
        maxLength=500,
        description="Why this run was started (kept in migration.audit_log). No patient data.",
    ),
}


def _dsns() -> tuple[str, str]:
    from migration_ops.connections import task_dsn

    return task_dsn(LEGACY_CONN_ID), task_dsn(TARGET_CONN_ID)


def _run(value: dict[str, Any]) -> Any:
    from migration_ops.runs import RunContext

    return RunContext.from_xcom(value)


@task
@value_free_task("run", "gate")
def gate(phase_number: int) -> None:
    """#### Gate

    Refuse to start unless the previous phase's latest run has validated (a validated run
    whose Asset was never emitted is demoted first: it does not count).
    """
    from migration_ops.runs import check_gate

    check_gate(_dsns()[1], get_phase(phase_number), emitted=_emitted())


def _gated_by(phase: PhaseSpec) -> list[Asset]:
    """The Assets of the phases the gate of ``phase`` checks (read as its inlets)."""
    from include.entities import LEGACY_PHASES

    if phase.number == SYNC_PHASE:
        return [Asset(p.asset_uri) for p in LEGACY_PHASES]
    return [Asset(get_phase(phase.number - 1).asset_uri)] if phase.number > 1 else []


def _emitted() -> set[str]:
    """``<dag id>__<Airflow run id>`` of every run whose Asset event Airflow recorded.

    Read through the calling task's inlets: a validated run whose publish was killed after
    Airflow recorded its Asset but before the confirmation is confirmed, not demoted.
    """
    context = get_current_context()
    events = context["inlet_events"]
    return {
        f"{event.source_dag_id}__{event.source_run_id}"
        for inlet in context["task"].inlets
        for event in events[inlet]
    }


@task
@value_free_task("preflight", "preflight")
def preflight() -> str:
    """#### Preflight

    Read-only checks of both databases before anything changes (connectivity, privileges,
    legacy schema drift, volumes, defect profile, extensions, pg_dump, free space); writes
    `preflight.html` and fails naming every failing check. Phase 1's gate.
    """
    from migration_ops.audit.preflight import require_preflight

    legacy, target = _dsns()
    return str(require_preflight(legacy, target))


@task
@value_free_task("run", "begin")
def begin(phase_number: int) -> dict[str, Any]:
    """#### Begin

    Apply the target schema (idempotent) and record the run; a dead run of the phase is
    abandoned, a validated one whose Asset was never emitted demoted, their staging dropped.
    """
    from migration_ops import runs

    context = get_current_context()
    phase = get_phase(phase_number)
    target = _dsns()[1]
    runs.apply_schema(target, phase)
    run = runs.begin_run(
        target,
        phase,
        f"{phase.dag_id}__{context['run_id']}",
        triggered_by=current_actor(),
        params=dict(context["params"]),
        emitted=_emitted(),
    )
    return run.to_xcom()


def current_actor() -> str:
    """Who triggered the current DAG run: the user, else the run type (scheduled, asset...).

    The run type's ``value`` (``asset_triggered``): the Task SDK's enum prints as
    ``DagRunType.ASSET_TRIGGERED``.
    """
    dag_run = get_current_context()["dag_run"]
    run_type = dag_run.run_type
    return getattr(dag_run, "triggering_user_name", None) or str(
        getattr(run_type, "value", run_type)
    )


@task
@value_free_task("backup", "dump")
def backup_dump(reason: str, phase_number: int | None = None, database: str = "target") -> int:
    """Dump: `pg_dump -Fc` of the target (schemas public and migration) or the legacy database.

    Per-table row counts are taken in the dump's own snapshot; all is recorded in
    `migration.backups`. Before a phase, a target whose `public` was not written since the
    newest verified backup reuses it instead (recorded with `reused_from`).
    """
    from migration_ops import backup

    legacy, target = _dsns()
    return backup.take_backup(
        target,
        reason=reason,
        triggered_by=current_actor(),
        phase=phase_number,
        database="legacy" if database == "legacy" else "target",
        source_dsn=legacy,
        reuse=phase_number is not None,
    )


@task
@value_free_task("backup", "verify")
def backup_verify(backup_id: int) -> dict[str, int]:
    """Verify: restore the dump into a scratch database, compare its row counts with the dump's.

    A backup that fails is marked failed in `migration.backups` and fails this task.
    """
    from migration_ops import backup

    return backup.verify_backup(_dsns()[1], backup_id)


def backup_group(
    reason: str,
    phase_number: int | None = None,
    *,
    database: str = "target",
    group_id: str = "backup",
) -> TaskGroup:
    """``dump → verify`` of one database, as a task group to put before whatever changes it."""
    with TaskGroup(
        group_id=group_id, tooltip=f"verified pg_dump of the {database} database"
    ) as group:
        dumped: Any = backup_dump(reason, phase_number, database)
        backup_verify(dumped)
    return group


@task
@value_free_task("phase", "extract")
def extract(run: dict[str, Any], phase_number: int) -> dict[str, int]:
    """#### Extract

    Binary COPY of every legacy table the phase's entities read, into staging, all from one
    read-only snapshot (exported once, imported by parallel sessions); the run records the
    snapshot's time. Each entity's staging is claimed for this run.
    """
    from migration_ops.pipeline import extract_step

    legacy, target = _dsns()
    return extract_step(legacy, target, _run(run), get_phase(phase_number).ordered())


@task
@value_free_task("phase", "transform")
def transform(run: dict[str, Any], entity_name: str) -> int:
    """#### Transform

    Set-based SQL builds the target-shaped rows in staging.
    """
    from migration_ops.pipeline import transform_step

    return transform_step(_dsns()[1], _run(run), get_entity(entity_name))


@task
@value_free_task("phase", "dedup")
def dedup(run: dict[str, Any], entity_name: str) -> dict[str, int]:
    """#### De-duplicate

    Link duplicate patients (Splink): auto-link band to one survivor, middle band to
    `migration.dedup_review`; nothing is deleted. Undoes the clusters of `dedup_unlink` first.
    """
    from migration_ops.dedup.engine import Thresholds
    from migration_ops.pipeline import dedup_step

    params = get_current_context()["params"]
    thresholds = Thresholds(
        link=float(params["dedup_link_threshold"]), review=float(params["dedup_review_threshold"])
    )
    return dedup_step(
        _dsns()[1],
        _run(run),
        get_entity(entity_name),
        thresholds=thresholds,
        unlink_ids=tuple(int(i) for i in params["dedup_unlink"]),
        actor=current_actor(),
    )


@task
@value_free_task("phase", "validate")
def validate(run: dict[str, Any], entity_name: str) -> dict[str, int]:
    """#### Validate

    Great Expectations suite; failing rows quarantined by rule; suite-level failures block the load.
    """
    from migration_ops.pipeline import validate_step

    return validate_step(_dsns()[1], _run(run), get_entity(entity_name), limit=_limit())


def _limit() -> Any:
    from migration_ops.validate import QuarantineLimit

    params = get_current_context()["params"]
    return QuarantineLimit(
        fraction=float(params["max_quarantine_fraction"]),
        allowance=int(params["quarantine_allowance"]),
    )


@task
@value_free_task("phase", "copy_objects")
def copy_objects(run: dict[str, Any], entity_name: str) -> dict[str, int]:
    """#### Copy objects.

    Bytes from the legacy media store to Supabase Storage, in parallel, with their sha256; an
    object already stored with the same sha256 is skipped; a missing source is quarantined.
    """
    from migration_ops.pipeline import object_copy_step
    from migration_ops.storage import task_settings

    entity = get_entity(entity_name)
    return object_copy_step(
        _dsns()[1], _run(run), entity, settings=task_settings(entity.name), limit=_limit()
    )


@task
@value_free_task("phase", "load")
def load(run: dict[str, Any], entity_name: str) -> dict[str, Any]:
    """#### Load

    One transaction keyed by the legacy id: the bulk path into an empty table, else an upsert
    of only the new or changed rows.
    """
    from migration_ops.pipeline import load_step

    legacy, target = _dsns()
    path = get_current_context()["params"].get("load_path", "auto")
    return load_step(target, _run(run), get_entity(entity_name), legacy_dsn=legacy, path=path)


@task
@value_free_task("phase", "verify")
def verify(run: dict[str, Any], entity_name: str) -> dict[str, int | str]:
    """#### Verify

    Row-level proof: every loaded row's mapped columns hashed on the legacy side (through the
    transform, same snapshot) and in the target, compared by legacy id; mismatches, missing
    and stray rows listed by id and column in `migration.row_findings`; any fails the entity.
    """
    from migration_ops.pipeline import verify_step

    return verify_step(_dsns()[1], _run(run), get_entity(entity_name))


@task
@value_free_task("phase", "checkpoint")
def checkpoint(run: dict[str, Any], entity_name: str) -> dict[str, int]:
    """#### Checkpoint

    Reconcile: source = loaded + merged + quarantined, recorded for auditors.
    """
    from migration_ops.pipeline import checkpoint_step

    return checkpoint_step(_dsns()[1], _run(run), get_entity(entity_name))


@task
@value_free_task("phase", "embed")
def embed(run: dict[str, Any], entity_name: str) -> dict[str, int]:
    """#### Embed (phase 5)

    Work the entity's embedding queue with the configured provider
    (`MIGRATION_EMBEDDING_PROVIDER`: bedrock, local or hashing): batches in a bounded thread
    pool, unchanged text skipped by content hash, failures retried with backoff and
    dead-lettered after 3 attempts. Counts only; no text in logs or XCom.
    """
    from migration_ops.pipeline import embed_step

    return embed_step(_dsns()[1], _run(run), get_entity(entity_name))


@task
@value_free_task("phase", "dify")
def dify(run: dict[str, Any], entity_name: str) -> dict[str, int]:
    """#### Dify (phase 5)

    When the `dify_knowledge` connection exists: one knowledge base per entity (created if
    absent), one document per row by text (created, updated on a changed hash, deleted when the
    row is gone), indexing polled until completed or error. Skipped without the connection.
    """
    from migration_ops.pipeline import dify_step

    return dify_step(_dsns()[1], _run(run), get_entity(entity_name))


#: An entity's steps after the phase's extract.
STEPS = (
    ("transform", transform),
    ("validate", validate),
    ("load", load),
    ("verify", verify),
    ("checkpoint", checkpoint),
)


def steps_of(entity: EntitySpec) -> tuple[tuple[str, Any], ...]:
    """The entity's steps in order, with the optional ones where they belong.

    De-duplication goes before validate, an object copy between validate and load, phase 5's
    embed and Dify steps between load and checkpoint.
    """
    steps: tuple[tuple[str, Any], ...] = STEPS
    if entity.dedup is not None:
        at = [name for name, _ in steps].index("validate")
        steps = (*steps[:at], ("dedup", dedup), *steps[at:])
    if entity.object_copy is not None:
        at = [name for name, _ in steps].index("load")
        steps = (*steps[:at], ("copy_objects", copy_objects), *steps[at:])
    if entity.embedding is not None:
        at = [name for name, _ in steps].index("checkpoint")
        steps = (*steps[:at], ("embed", embed), ("dify", dify), *steps[at:])
    return steps


@task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
@value_free_task("run", "record_failure")
def record_failure() -> None:
    """#### Record failure

    After everything else has finished: unless `publish` succeeded, mark the run failed and
    write its report, so the gate stays closed and status, reports and Asset agree (no Asset
    is emitted without a successful `publish`); then fail, so the DAG run shows failed.
    Skipped when the run validated. If marking fails the run stays `running` under a dead
    process (the next run abandons it); if the report fails there is none (reports are
    written whole or not at all), never one that says validated.

    Derives the run id from the context rather than from ``begin``'s XCom, so it also
    works when ``begin`` itself never ran.
    """
    from airflow.exceptions import AirflowFailException, AirflowSkipException

    from migration_ops import reports, runs

    context = get_current_context()
    if context["ti"].xcom_pull(task_ids="publish") is not None:
        raise AirflowSkipException("the run validated and published its Asset")
    run_id = f"{context['dag'].dag_id}__{context['run_id']}"
    target = _dsns()[1]
    report = reports.write(target, run_id) if runs.mark_failed(target, run_id) else None
    raise AirflowFailException(
        f"run {run_id} failed" + (f"; report: {report}" if report else " before it began")
    )


def _confirm_published(context: Any) -> None:
    """``publish``'s success callback: Airflow has recorded the Asset, so the run is published.

    A run killed between its ``validated`` commit and this point stays unconfirmed, and the
    next run of its phase (or the next phase's gate) demotes it (``runs.demote_unpublished``).
    """
    from migration_ops import runs

    runs.confirm_published(_dsns()[1], f"{context['dag'].dag_id}__{context['run_id']}")


def _publish(phase: PhaseSpec) -> Any:
    @task(
        task_id="publish",
        outlets=[Asset(phase.asset_uri)],
        on_success_callback=_confirm_published,
    )
    @value_free_task("run", "publish")
    def publish(run: dict[str, Any]) -> str:
        """#### Publish

        Check every entity reconciled, write the reports as validated, then commit
        `validated` as the last act before Airflow emits the phase's Asset. A failure before
        that commit leaves the run `running` for `record_failure` to mark failed; a kill right
        after it leaves a validated run without an Asset, which the next run or gate demotes.
        """
        from migration_ops import reports, runs

        target = _dsns()[1]
        context = _run(run)
        phase = get_phase(run["phase"])
        finished_at = runs.reconciled_at(target, context, phase)
        written = reports.write(
            target,
            context.run_id,
            about_to_record={"status": "validated", "finished_at": finished_at.isoformat()},
        )
        runs.finish_run(target, context, phase, finished_at=finished_at, asset=True)
        return str(written)

    return publish


@task
@value_free_task("signoff", "sign_off")
def sign_off() -> str:
    """#### Sign-off

    Rewrite the sign-off summary across all phases (`reports/signoff/signoff.html`): one page
    an auditor can file, with every figure and the query it comes from.

    Wired as a teardown (``sign_off().as_teardown()``) after ``publish`` and ``record_failure``:
    it runs whatever the outcome, once the run's status is final, so a failed rerun replaces an
    earlier "ready to sign"; a teardown does not decide the DAG run's state (``record_failure``
    still fails it).
    """
    from migration_ops.audit import signoff

    return str(signoff.write(_dsns()[1]))


def _doc(phase: PhaseSpec) -> str:
    lines = [
        f"# Phase {phase.number}: {phase.title}" if phase.number else f"# {phase.title}",
        "",
        "Extract (binary COPY from a read-only snapshot) → transform (set-based SQL) → validate "
        "(Great Expectations; failing rows to `migration.quarantine`) → load (upsert by legacy id, "
        "new or changed rows only) → checkpoint (reconciliation), per entity.",
        "",
        "**Idempotent:** rerunning converges to the same target rows and adds no quarantine "
        "duplicates.",
        f"**Connections:** `{LEGACY_CONN_ID}` (read only), `{TARGET_CONN_ID}`.",
        f"**Emits:** `{phase.asset_uri}` when every entity reconciled.",
    ]
    if phase.number == SYNC_PHASE:
        lines.append(
            "**Gate:** runs only after phases 1-4 validated. Reads and writes only what changed "
            "in legacy since the last sync (change detection per table: `docs/sync.md`); rows "
            "gone from legacy are marked `legacy_removed_at`, never deleted."
        )
    elif phase.number > 1:
        lines.append(f"**Gate:** runs only after phase {phase.number - 1} validated.")
    lines += [
        f"**Needs:** pool `{TARGET_POOL}` (entity steps; independent entities run in parallel).",
        "**Recover:** a failed run is marked `failed` with its report; fix the cause (a "
        "quarantine rule: docs/troubleshooting.md; a connection or worker: retried "
        "automatically) and trigger this DAG again; it starts from a fresh snapshot and "
        "converges. To undo it: `rollback_phase`. Progress and counts: the Migration dashboard.",
    ]
    lines += ["", "| entity | legacy source | target | suite |", "|---|---|---|---|"]
    for entity in phase.ordered():
        sources = ", ".join(s.table for s in entity.sources)
        lines.append(f"| {entity.name} | {sources} | `{entity.target_table}` | `{entity.suite}` |")
    return "\n".join(lines)


def _entity_groups(phase: PhaseSpec, run: Any, staged: Any) -> dict[str, TaskGroup]:
    """One task group per entity after ``staged``; parents first, earlier phases first."""
    groups: dict[str, TaskGroup] = {}
    for entity in phase.ordered():
        with TaskGroup(group_id=entity.name, tooltip=entity.description) as group:
            steps = [
                step.override(task_id=name, pool=TARGET_POOL)(run, entity.name)
                for name, step in steps_of(entity)
            ]
            for upstream, downstream in zip(steps, steps[1:], strict=False):
                upstream >> downstream
        staged >> group
        for earlier in phase.ordered():
            if earlier.name in entity.parents or earlier.phase == entity.phase - 1:
                groups[earlier.name] >> group
        groups[entity.name] = group
    return groups


def _schedule(phase: PhaseSpec) -> Any:
    """The previous phase's Asset (or any ``also_after`` one); the sync's nightly cron.

    The sync's cron is ``MIGRATION_SYNC_SCHEDULE`` (default 02:00).
    """
    if phase.number == SYNC_PHASE:
        return os.environ.get("MIGRATION_SYNC_SCHEDULE", "0 2 * * *")
    if phase.number == 1:
        return None
    condition: Any = Asset(get_phase(phase.number - 1).asset_uri)
    for uri in phase.also_after:
        condition = condition | Asset(uri)
    return [condition] if not phase.also_after else condition


def build_phase_dag(phase: PhaseSpec) -> DAG:
    """Return the DAG of one migration phase, or of the sync (see the module docstring).

    The sync (phase 0) has no backup of its own (the daily ``backup_target`` covers it: a
    full dump every night would cost more than the change it syncs) and runs every entity of
    phases 1–4, a phase's entities after those of the phase before.
    """
    with DAG(
        dag_id=phase.dag_id,
        schedule=_schedule(phase),
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        # Unpaused from the start: a paused phase 2 would never follow phase 1's Asset.
        is_paused_upon_creation=False,
        default_args=DEFAULT_ARGS,
        params=PARAMS,
        tags=["migration", f"phase-{phase.number}" if phase.number else "sync", phase.name],
        doc_md=_doc(phase),
    ) as dag:
        run: Any = begin.override(inlets=[Asset(phase.asset_uri)])(phase.number)
        checked: Any = gate.override(inlets=_gated_by(phase))
        if phase.number == SYNC_PHASE:
            checked(phase.number) >> run
        else:
            backup = backup_group(f"before phase {phase.number}", phase.number)
            backup >> run
            if phase.number > 1:
                checked(phase.number) >> [backup, run]
            else:
                preflight() >> [backup, run]
        staged: Any = extract.override(task_id="extract")(run, phase.number)
        groups = _entity_groups(phase, run, staged)
        published = _publish(phase)(run)
        list(groups.values()) >> published
        failed = record_failure()
        [staged, *groups.values(), published] >> failed
        [published, failed] >> sign_off().as_teardown()
    return dag
