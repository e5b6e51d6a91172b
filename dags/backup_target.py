"""Backup of the migration target (Airflow DAG ``backup_target``): daily, and on demand.

`pg_dump -Fc` of the target's `public` and `migration` schemas, with per-table row counts
taken inside the dump's own snapshot; then the proof: the dump is restored into a scratch
database and the counts compared. A backup that fails verification is marked `failed` in
`migration.backups` and fails the run. On request the legacy database is dumped and verified
the same way. Last, rotation keeps N daily / weekly / monthly backups
(`MIGRATION_BACKUP_KEEP_*`) and never prunes the newest verified one nor a phase's restore point.

Files go to `MIGRATION_BACKUP_DIR` (default `.local/backups`), or to S3 when
`MIGRATION_BACKUP_S3_BUCKET` is set (connection `backup_s3`). Phase DAGs take the same
verified backup inline before they change anything. See `docs/backup-and-rollback.md`.

Recover: a failed dump or verification changes nothing on the target; read the task log
(disk space, `pg_dump` version, connection) and trigger again. Paused at creation: unpause
it to get the daily backup.
"""

from datetime import UTC, datetime

from airflow.sdk import DAG, Param, TriggerRule, get_current_context, task

from migration_ops.dag_factory import DEFAULT_ARGS, backup_group
from migration_ops.errors import value_free_task
from migration_ops.settings import TARGET_CONN_ID

REASON = "{{ params.reason }}"


@task.short_circuit(ignore_downstream_trigger_rules=False)
@value_free_task("backup", "legacy_requested")
def legacy_requested() -> bool:
    """Legacy requested? Skip the legacy backup unless the `include_legacy` param is set."""
    return bool(get_current_context()["params"]["include_legacy"])


@task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
@value_free_task("backup", "rotate")
def rotate() -> list[int]:
    """Rotate: prune the backups the daily/weekly/monthly policy no longer keeps.

    Their files go; their manifest rows stay (`pruned_at`).
    """
    from migration_ops import backup
    from migration_ops.connections import task_dsn

    return backup.prune(task_dsn(TARGET_CONN_ID))


with DAG(
    dag_id="backup_target",
    schedule="0 2 * * *",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "include_legacy": Param(
            False,
            type="boolean",
            description="Also dump and verify the legacy database (read only; holds patient data).",
        ),
        "reason": Param(
            "scheduled",
            type="string",
            minLength=1,
            maxLength=200,
            description="Why this backup is taken (kept in migration.backups). No patient data.",
        ),
    },
    tags=["migration", "backup"],
    doc_md=__doc__,
):
    target = backup_group(REASON, group_id="target")
    legacy = backup_group(REASON, database="legacy", group_id="legacy")
    legacy_requested() >> legacy
    [target, legacy] >> rotate()
