"""Preflight (Airflow DAG ``preflight``): is it safe to migrate? Read-only, runnable any time.

Checks connectivity and privileges (legacy sessions read-only; the target role can create
what the phases create), the legacy schema against what the entity specs read (missing
tables or columns, changed types: a drift report), volumes per table against the last run, a
defect profile (orphans, bad e-mails, unknown codes, mis-encoded text), the target's
extensions (`vector`, `pgcrypto`), `pg_dump` against both servers and free space for backups.
Writes `reports/preflight-<time>/preflight.html` (and `.json`); fails naming every failing
check. Changes nothing in either database. Phase 1 runs the same checks as its first task.
See `docs/auditor-guide.md`.

**Recover:** fix what the failing checks name (the legacy side or the entity spec for drift,
a grant for a privilege, `MIGRATION_PG_BIN` for `pg_dump`, space for backups), then trigger
this DAG again; it changes nothing, so it can run as often as needed.
"""

from datetime import UTC, datetime

from airflow.sdk import DAG, Param

from migration_ops.dag_factory import DEFAULT_ARGS, preflight

with DAG(
    dag_id="preflight",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "note": Param("", type="string", maxLength=500, description="Why (no patient data)."),
    },
    tags=["migration", "audit", "preflight"],
    doc_md=__doc__,
):
    preflight()
