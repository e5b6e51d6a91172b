"""The migration under Airflow's scheduler on Celery workers (``make test-celery``).

Phase 1 is triggered through the REST API with a token from Airflow's login, as the UI's
trigger button does; the scheduler then runs phases 2–4 from their Assets on the Celery
worker. The second test SIGKILLs the worker in the middle of a load and checks that the task
is tried again on a new worker and the phase converges.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from include.entities import PHASES
from migration_ops import local_env
from migration_ops.db import connect, scalar
from tests.e2e.airflow_stack import AirflowStack, start_stack, wait_for
from tests.e2e.kill_harness import comparable

pytestmark = [pytest.mark.e2e, pytest.mark.celery]


@pytest.fixture
def stack_factory(tmp_path: Path, pg_socket: str, sandbox_dsn: str, supabase_storage) -> Iterator:
    """Start a distributed Airflow on a fresh target database; stopped afterwards."""
    started: list[AirflowStack] = []

    def start(target_db: str) -> tuple[AirflowStack, str]:
        target = local_env.ensure_supabase_database(pg_socket, target_db, recreate=True)
        stack = start_stack(tmp_path / target_db, pg_socket, "e2e_legacy", target_db)
        started.append(stack)
        return stack, target

    yield start
    for stack in started:
        stack.stop()


def _finished(stack: AirflowStack, dag_id: str) -> bool:
    """The DAG's latest run has finished (record_failure runs, and skips, after publish)."""
    stack.assert_alive()
    dag_runs = stack.dag_runs(dag_id)
    return bool(dag_runs) and dag_runs[-1]["state"] in {"success", "failed"}


def _validated(target: str, phase: int | None = None) -> bool:
    """Phase ``phase`` validated; fails at once when any phase run failed (no waiting it out)."""
    with connect(target) as conn:
        statuses = dict(conn.execute("select phase, status from migration.runs").fetchall())
    assert "failed" not in statuses.values(), statuses
    return statuses.get(phase) == "validated"


def _run_begun(target: str) -> bool:
    with connect(target) as conn:
        return bool(conn.execute("select to_regclass('migration.runs')").fetchone()[0]) and bool(
            conn.execute("select 1 from migration.runs where phase = 1").fetchone()
        )


def _loading(server: str, entity: str) -> bool:
    with connect(server, autocommit=True) as conn:
        return bool(
            conn.execute(
                "select 1 from pg_stat_activity where application_name = %s and state <> 'idle'",
                (f"migration:load:{entity}",),
            ).fetchone()
        )


def test_phase_1_triggered_in_the_api_runs_every_phase_on_celery(stack_factory, tmp_path) -> None:
    stack, target = stack_factory("celery_target")
    first, last = PHASES[0], PHASES[-1]
    wait_for(lambda: stack.request("GET", f"/api/v2/dags/{first.dag_id}"), 180, "DAGs parsed")
    stack.trigger(first.dag_id, {"note": "celery e2e"})
    wait_for(
        lambda: _finished(stack, last.dag_id) and _validated(target, last.number),
        1500,
        "phase 4 validated and its DAG run finished",
        every=5,
    )
    for phase in PHASES:
        dag_runs = stack.dag_runs(phase.dag_id)
        assert [r["state"] for r in dag_runs] == ["success"], phase.dag_id
        expected = "manual" if phase.number == 1 else "asset_triggered"
        assert dag_runs[0]["run_type"] == expected, phase.dag_id
    with connect(target) as conn:
        statuses = conn.execute(
            "select phase, status from migration.runs order by phase"
        ).fetchall()
        unbalanced = scalar(
            conn,
            "select count(*) from migration.reconciliation "
            "where source_rows <> loaded_rows + merged_rows + quarantined_rows",
        )
        entities = scalar(conn, "select count(distinct entity) from migration.reconciliation")
        hosts = conn.execute(
            "select count(*) from migration.runs where triggered_by = %s", ("admin",)
        ).fetchone()
    assert statuses == [(p.number, "validated") for p in PHASES]
    assert unbalanced == 0
    assert entities == sum(len(p.entities) for p in PHASES)
    assert hosts == (1,), "phase 1 records the user who triggered it; 2-4 their Asset"
    tries = stack.task_tries(first.dag_id, stack.dag_runs(first.dag_id)[0]["dag_run_id"])
    assert {t[-1]["pool"] for k, t in tries.items() if k.endswith(".load")} == {"migration_target"}


def test_a_worker_killed_during_a_load_is_retried_and_converges(
    stack_factory, pg_socket, sandbox_dsn, supabase_db, migrate
) -> None:
    stack, target = stack_factory("celery_kill_target")
    phase = PHASES[0]
    wait_for(lambda: stack.request("GET", f"/api/v2/dags/{phase.dag_id}"), 180, "DAGs parsed")
    stack.trigger(phase.dag_id)
    server = local_env.dsn(pg_socket, "postgres")
    # A sandbox load takes milliseconds: hold a SHARE lock on profiles' table (after the
    # backup, which needs its own lock) so the load is surely running when the worker dies.
    wait_for(lambda: _run_begun(target), 600, "phase 1 begun", every=0.5)
    with connect(local_env.dsn(pg_socket, "celery_kill_target")) as blocker:
        blocker.execute("lock table public.profiles in share mode")
        wait_for(lambda: _loading(server, "profiles"), 600, "profiles' load", every=0.5)
        stack.kill("worker")
    stack.start_worker("worker-2")
    wait_for(
        lambda: _finished(stack, phase.dag_id) and _validated(target, phase.number),
        900,
        "phase 1 validated",
        every=5,
    )
    run_id = stack.dag_runs(phase.dag_id)[0]["dag_run_id"]
    tries = stack.task_tries(phase.dag_id, run_id)
    retried = {task: t for task, t in tries.items() if len(t) > 1}
    assert "profiles.load" in retried, f"the killed load was tried again: {retried}"
    for task, task_tries in retried.items():
        assert task_tries[-1]["state"] == "success", task
        assert task_tries[0]["state"] in {"failed", "up_for_retry"}, task
    reference = supabase_db("celery_kill_reference")
    migrate(sandbox_dsn, reference, phase, "reference-run")
    assert comparable(target, through=1) == comparable(reference, through=1)
