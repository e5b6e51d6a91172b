"""The migration under Airflow's scheduler on Celery workers (``make test-celery``).

Phase 1 is triggered through the REST API with a token from Airflow's login, as the UI's
trigger button does; the scheduler then runs phases 2–5 from their Assets on the Celery
worker. Meanwhile the target's migration sessions are sampled: never more than the pool's
slots (+ the extract's own two). Independent root entities must have run side by side. Then
the operations a data engineer triggers in the UI run through the same API: an on-demand
``backup_target``, ``incremental_sync`` after an office was renamed in (a private copy of)
legacy, and ``rollback_phase`` of phase 4 with ``cascade`` and ``confirm``; each is checked
in the ``migration`` schema. The second test SIGKILLs the worker in the middle of a load and
checks that the task is tried again on a new worker and the phase converges.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from include.entities import PHASES, get_phase
from include.entities.spec import PhaseSpec
from migration_ops import local_env, rollback
from migration_ops.db import connect, scalar
from migration_ops.pools import target_slots
from tests.e2e.airflow_stack import AirflowStack, start_stack, wait_for
from tests.e2e.conftest import copy_of_sandbox
from tests.e2e.kill_harness import comparable

pytestmark = [pytest.mark.e2e, pytest.mark.celery]


@pytest.fixture
def stack_factory(tmp_path: Path, pg_socket: str, sandbox_dsn: str, supabase_storage) -> Iterator:
    """Start a distributed Airflow on a fresh target database; stopped afterwards.

    ``legacy_db`` names a private copy of the sandbox when the test changes legacy rows.
    """
    started: list[AirflowStack] = []

    def start(target_db: str, legacy_db: str = "e2e_legacy") -> tuple[AirflowStack, str]:
        if legacy_db != "e2e_legacy":
            copy_of_sandbox(pg_socket, legacy_db)
        target = local_env.ensure_supabase_database(pg_socket, target_db, recreate=True)
        stack = start_stack(tmp_path / target_db, pg_socket, legacy_db, target_db)
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


class SessionSampler:
    """Samples, every 0.2 s in a thread, the migration's sessions on one database.

    Counts ``pg_stat_activity`` rows named ``migration:<step>:<entity>`` (every session the
    migration opens is named so; the test's own are not) and keeps the highest count seen.
    """

    def __init__(self, pg_socket: str, database: str) -> None:
        self.server = local_env.dsn(pg_socket, "postgres")
        self.database = database
        self.most = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-sampler", daemon=True)

    def _run(self) -> None:
        with connect(self.server, autocommit=True) as conn:
            while not self._stop.is_set():
                sessions = scalar(
                    conn,
                    "select count(*) from pg_stat_activity where datname = %s "
                    "and application_name like 'migration:%%'",
                    (self.database,),
                )
                self.most = max(self.most, int(sessions))
                self.samples += 1
                self._stop.wait(0.2)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _run_state(stack: AirflowStack, dag_id: str, run_id: str) -> str | None:
    """State of one DAG run once it finished, else ``None``."""
    stack.assert_alive()
    state = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
    return str(state) if state in {"success", "failed"} else None


def _run_to_success(stack: AirflowStack, dag_id: str, conf: dict, timeout: float = 300) -> str:
    """Trigger ``dag_id`` through the REST API (unpaused first), wait, expect success."""
    stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run_id = stack.trigger(dag_id, conf)
    state = wait_for(lambda: _run_state(stack, dag_id, run_id), timeout, f"{dag_id} run", every=3)
    assert state == "success", (dag_id, run_id)
    return run_id


def test_phase_1_triggered_in_the_api_runs_every_phase_on_celery(stack_factory, pg_socket) -> None:
    stack, target = stack_factory("celery_target", legacy_db="celery_legacy")
    first, last = PHASES[0], PHASES[-1]
    wait_for(lambda: stack.request("GET", f"/api/v2/dags/{first.dag_id}"), 180, "DAGs parsed")
    with SessionSampler(pg_socket, "celery_target") as seen:
        stack.trigger(first.dag_id, {"note": "celery e2e"})
        wait_for(
            lambda: _finished(stack, last.dag_id) and _validated(target, last.number),
            1500,
            "phase 5 validated and its DAG run finished",
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
        actors = conn.execute(
            "select phase, triggered_by from migration.runs where phase > 1 order by phase"
        ).fetchall()
    assert statuses == [(p.number, "validated") for p in PHASES]
    assert unbalanced == 0
    assert entities == sum(len(p.entities) for p in PHASES)
    assert hosts == (1,), "phase 1 records the user who triggered it; 2-5 their Asset"
    assert actors == [(p.number, "asset_triggered") for p in PHASES[1:]]
    tries = stack.task_tries(first.dag_id, stack.dag_runs(first.dag_id)[0]["dag_run_id"])
    assert {t[-1]["pool"] for k, t in tries.items() if k.endswith(".load")} == {"migration_target"}
    # the pool bounds the target sessions: one per running step, the extract's two beside
    assert seen.samples > 100 and 1 <= seen.most <= target_slots() + 2, seen.most
    _independent_roots_overlapped(stack, first, tries)
    _backup_on_demand(stack, target)
    _sync_after_a_legacy_change(stack, target, local_env.dsn(pg_socket, "celery_legacy"))
    _rollback_of_phase_4(stack, target)


def _independent_roots_overlapped(
    stack: AirflowStack, phase: PhaseSpec, tries: dict[str, list[dict]]
) -> None:
    """Two entities of the phase with no parent in it ran at the same time on the workers."""
    names = {e.name for e in phase.entities}
    roots = [e.name for e in phase.ordered() if not set(e.parents) & names][:2]
    assert len(roots) == 2, roots
    spans = []
    for root in roots:
        own = [t[-1] for task, t in tries.items() if task.startswith(f"{root}.")]
        assert own and {t["state"] for t in own} <= {"success", "skipped"}, root
        own = [t for t in own if t["state"] == "success"]  # ran on a worker
        spans.append(
            (
                min(datetime.fromisoformat(t["start_date"]) for t in own),
                max(datetime.fromisoformat(t["end_date"]) for t in own),
            )
        )
    (start_a, end_a), (start_b, end_b) = spans
    assert max(start_a, start_b) < min(end_a, end_b), f"{roots} ran one after the other: {spans}"


def _backup_on_demand(stack: AirflowStack, target: str) -> None:
    """``backup_target`` triggered by the admin: one verified target dump with that reason."""
    _run_to_success(stack, "backup_target", {"reason": "celery e2e", "include_legacy": False})
    # unpausing lets the scheduler add the nightly run: it must finish before the rollback
    wait_for(
        lambda: all(r["state"] in {"success", "failed"} for r in stack.dag_runs("backup_target")),
        300,
        "every backup_target run finished",
        every=3,
    )
    with connect(target) as conn:
        taken = conn.execute(
            "select database, status, triggered_by, phase, row_counts->>'public.offices' "
            "from migration.backups where reason = 'celery e2e'"
        ).fetchall()
        offices = scalar(conn, "select count(*) from public.offices")
    assert taken == [("target", "verified", "admin", None, str(offices))]


def _sync_after_a_legacy_change(stack: AirflowStack, target: str, legacy: str) -> None:
    """An office renamed in legacy: ``incremental_sync`` updates exactly that row."""
    with connect(legacy) as conn:
        conn.execute("update dispatch_office set name = 'Celery Rename' where id = 2")
    run_id = _run_to_success(stack, "incremental_sync", {"note": "celery e2e sync"}, 600)
    with connect(target) as conn:
        status = scalar(
            conn,
            "select status from migration.runs where run_id = %s",
            (f"incremental_sync__{run_id}",),
        )
        offices = conn.execute(
            "select inserted_rows, updated_rows, removed_rows from migration.checkpoints "
            "where run_id = %s and entity = 'offices'",
            (f"incremental_sync__{run_id}",),
        ).fetchone()
        name = scalar(conn, "select name from public.offices where legacy_office_id = 2")
    assert (status, offices, name) == ("validated", (0, 1, 0), "Celery Rename")
    _phase_5_ran_after_the_sync(stack)


def _phase_5_ran_after_the_sync(stack: AirflowStack) -> None:
    """The sync's Asset schedules phase 5 (its changes embedded that night): a second phase 5
    run, Asset-triggered, succeeds on the workers (and a rollback must wait for it)."""
    dag_id = get_phase(5).dag_id
    wait_for(
        lambda: len(stack.dag_runs(dag_id)) == 2 and _finished(stack, dag_id),
        600,
        "phase 5 after the sync",
        every=3,
    )
    runs_after = stack.dag_runs(dag_id)
    assert [(r["run_type"], r["state"]) for r in runs_after] == [
        ("asset_triggered", "success"),
        ("asset_triggered", "success"),
    ]


def _rollback_of_phase_4(stack: AirflowStack, target: str) -> None:
    """``rollback_phase`` (phase 4, cascade, confirmed): phases 4 and 5 emptied, 1-3 kept."""
    order = rollback.deletion_order(4)
    with connect(target) as conn:
        before = {e.name: rollback.entity_rows(conn, e) for e in order}
        kept = {e.name: rollback.entity_rows(conn, e) for e in rollback.deletion_order(1)}
        covered = sorted(
            r[0] for r in conn.execute("select run_id from migration.runs where phase in (4, 5)")
        )
    conf = {"phase": 4, "mode": "delete", "cascade": True, "confirm": "4", "note": "celery e2e"}
    _run_to_success(stack, "rollback_phase", conf)
    with connect(target) as conn:
        after = {e.name: rollback.entity_rows(conn, e) for e in rollback.deletion_order(1)}
        actor, phase, params = conn.execute(
            "select actor, phase, params from migration.audit_log where action = 'rollback' "
            "order by audit_id desc limit 1"
        ).fetchone()
        statuses = dict(
            conn.execute(
                "select distinct on (phase) phase, status from migration.runs "
                "order by phase, started_at desc"
            ).fetchall()
        )
        safety = conn.execute(
            "select status, triggered_by from migration.backups "
            "where reason = 'before rollback of phase 4'"
        ).fetchall()
    assert all(before[e.name] > 0 for e in order if e.phase == 4), before
    assert (actor, phase) == ("admin", 4)
    assert params["deleted"] == before and sorted(params["runs_rolled_back"]) == covered
    assert after == {name: 0 if name in before else rows for name, rows in kept.items()}
    assert statuses == {
        0: "validated",
        1: "validated",
        2: "validated",
        3: "validated",
        4: "rolled_back",
        5: "rolled_back",
    }
    assert safety == [("verified", "admin")]


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
