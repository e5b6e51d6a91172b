"""Rollback of a migration phase (Airflow DAG ``rollback_phase``), triggered by hand only.

Params: `phase` (1-5), `mode`, `cascade`, `confirm` (the phase number again) and `note`.

- `delete` removes exactly the rows the phase loaded (and those of every later phase),
  later phases first, children before parents, one transaction per entity. Earlier phases'
  rows are not touched; the `migration` schema keeps its history and records the rollback.
- `restore` puts back the `public` schema of the newest verified backup taken before the
  phase first ran, in one transaction (tables are locked while it runs). Refused when an
  earlier phase ran after that backup.

Refused while a later phase still has rows, unless `cascade` is set; refused while a run is
in progress. A verified backup of the current state is taken first, so a mistaken rollback
can itself be undone. Afterwards the rolled-back phases' runs are `rolled_back`: later
phases stay gated until the phase runs and validates again. See
`docs/backup-and-rollback.md` for when to use which mode.

Recover: a refused or failed rollback leaves the target as it was (one transaction per
entity, or one for a restore); the backup taken first restores a mistaken one.
"""

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from migration_ops.dag_factory import DEFAULT_ARGS, backup_group, current_actor
from migration_ops.errors import value_free_task
from migration_ops.settings import TARGET_CONN_ID


def _roll_back(*, dry_run: bool) -> dict[str, Any]:
    from migration_ops import rollback
    from migration_ops.connections import task_dsn

    params = get_current_context()["params"]
    return rollback.roll_back(
        task_dsn(TARGET_CONN_ID),
        int(params["phase"]),
        mode=str(params["mode"]),
        cascade=bool(params["cascade"]),
        actor=current_actor(),
        note=str(params["note"]),
        confirm=str(params["confirm"]),
        dry_run=dry_run,
    )


@task
@value_free_task("rollback", "plan")
def plan() -> dict[str, Any]:
    """Plan: check the params and the target; refuse early, or list the rows each entity loses.

    Nothing is changed here: a refusal (later phase with rows, run in progress, wrong
    confirmation) stops the run before the backup and the rollback.
    """
    return _roll_back(dry_run=True)


@task
@value_free_task("rollback", "roll_back")
def roll_back() -> dict[str, Any]:
    """Roll back: delete the phases' rows, or restore the backup taken before the phase.

    Checks again (the target may have changed since the plan), marks the runs `rolled_back`
    and records the rollback in `migration.audit_log`.
    """
    return _roll_back(dry_run=False)


with DAG(
    dag_id="rollback_phase",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "phase": Param(
            type="integer",
            minimum=1,
            maximum=5,
            description="Phase to roll back (every later phase is rolled back with it).",
        ),
        "mode": Param(
            "delete",
            type="string",
            enum=["delete", "restore"],
            description=(
                "delete: remove exactly the rows the phase loaded. restore: put back the public "
                "schema of the verified backup taken before the phase first ran."
            ),
        ),
        "cascade": Param(
            False,
            type="boolean",
            description="Allow rolling back later phases that still have rows (else refused).",
        ),
        "confirm": Param(
            "",
            type="string",
            description="Type the phase number again: a guard against rolling back by accident.",
        ),
        "note": Param(
            "",
            type="string",
            maxLength=500,
            description="Why (kept in migration.audit_log). No patient data.",
        ),
    },
    tags=["migration", "rollback"],
    doc_md=__doc__,
):
    plan() >> backup_group("before rollback of phase {{ params.phase }}") >> roll_back()
