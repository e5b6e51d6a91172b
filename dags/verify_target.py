"""Row-level proof of the whole target (Airflow DAG ``verify_target``), on demand.

Re-stages every migrated entity's legacy tables from one fresh read-only snapshot (staging
claimed by a verification run, phase -1 in `migration.runs`), runs each entity's transform,
hashes the mapped columns of every row on both sides and compares them by legacy id in the
target database; lists mismatched (with the column names), missing and unexpected rows by
legacy id in `migration.row_findings`, counts in `migration.row_validation`; drops the
staging. Fails when any row differs. Refuses while a phase run is running. No values leave
the databases. See `docs/decisions/0010-row-level-proof.md`.

Afterwards, whatever the outcome, `sign_off` rewrites the sign-off summary, so it shows this
verification (a failed one makes it "not ready to sign").

**Recover:** findings name the legacy id and column (`migration.row_findings`): rerun the
phase that loaded the entity (it upserts the legacy values again), or run the nightly sync,
then trigger this DAG again. A refusal names the running runs: wait for them.
"""

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from migration_ops.dag_factory import DEFAULT_ARGS, current_actor, sign_off
from migration_ops.errors import value_free_task


@task
@value_free_task("verify_target", "verify")
def verify_target() -> dict[str, Any]:
    """Verify: compare legacy (through the transforms) with the target, row by row."""
    from migration_ops.audit.verify import verify_target as verify
    from migration_ops.connections import task_dsn
    from migration_ops.settings import LEGACY_CONN_ID, TARGET_CONN_ID

    context = get_current_context()
    results = verify(
        task_dsn(LEGACY_CONN_ID),
        task_dsn(TARGET_CONN_ID),
        run_id=f"verify_target__{context['run_id']}",
        triggered_by=current_actor(),
        params=dict(context["params"]),
    )
    return {name: outcome.as_dict() for name, outcome in results.items()}


with DAG(
    dag_id="verify_target",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "note": Param("", type="string", maxLength=500, description="Why (no patient data)."),
    },
    tags=["migration", "audit", "verify"],
    doc_md=__doc__,
):
    verify_target() >> sign_off().as_teardown()
