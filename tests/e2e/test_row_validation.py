"""Row-level proof legacy ↔ target (issue 18): after every load, and on demand (verify_target).

One legacy copy and one target migrated through all four phases; then the target is
corrupted (a column changed, rows deleted, strays added) and one legacy column is changed
after the load: ``verify_target`` finds each, by legacy id and column name.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from include.entities import LEGACY_PHASES, PHASES
from migration_ops import local_env
from migration_ops.audit import verify
from migration_ops.db import connect
from migration_ops.errors import MigrationError

pytestmark = pytest.mark.e2e
ALL = [e for p in LEGACY_PHASES for e in p.ordered()]  # verify_target: what legacy holds


@pytest.fixture(scope="module")
def migrated(sandbox_dsn, pg_socket, supabase_storage):
    """(legacy copy dsn, target dsn, run ids by phase): all four phases, once."""
    from tests.e2e.conftest import run_phase

    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        conn.execute("drop database if exists e2e_rv_legacy with (force)")
        conn.execute("create database e2e_rv_legacy template e2e_legacy")
    legacy = local_env.dsn(pg_socket, "e2e_rv_legacy")
    target = local_env.ensure_supabase_database(pg_socket, "e2e_rv_target", recreate=True)
    run_ids = {
        p.number: run_phase(legacy, target, p, f"rv-phase-{p.number}").run_id for p in PHASES
    }
    return legacy, target, run_ids


def _row_validation(target: str, run_id: str) -> dict[str, tuple[int, ...]]:
    with connect(target) as conn:
        rows = conn.execute(
            "select entity, compared_rows, matched_rows, mismatched_rows, missing_rows, "
            "unexpected_rows from migration.row_validation where run_id = %s",
            (run_id,),
        ).fetchall()
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


def _methods(target: str, run_id: str) -> dict[str, str]:
    with connect(target) as conn:
        rows = conn.execute(
            "select entity, method from migration.row_validation where run_id = %s", (run_id,)
        ).fetchall()
    return {str(entity): str(method) for entity, method in rows}


def _findings(target: str, run_id: str) -> set[tuple[str, int, str, str]]:
    with connect(target) as conn:
        rows = conn.execute(
            "select entity, legacy_id, kind, column_name from migration.row_findings "
            "where run_id = %s",
            (run_id,),
        ).fetchall()
    return {(r[0], int(r[1]), r[2], r[3]) for r in rows}


def test_every_loaded_row_matches_legacy_after_its_load(migrated) -> None:
    _, target, run_ids = migrated
    with connect(target) as conn:
        loaded = dict(
            # a linked duplicate is loaded (its own row) but counted as merged
            conn.execute(
                "select entity, loaded_rows + merged_rows from migration.checkpoints"
            ).fetchall()
        )
    for phase in PHASES:
        results = _row_validation(target, run_ids[phase.number])
        assert set(results) == {e.name for e in phase.entities}
        for name, (compared, matched, *bad) in results.items():
            assert compared == loaded[name], name
            assert matched == compared and bad == [0, 0, 0], name
        # equal fingerprints settle an unchanged entity; phase 5's queues have no unique index
        # on their key (source_key), so only a row-by-row comparison is a proof there
        method = "checksum" if phase in LEGACY_PHASES else "row_by_row"
        assert set(_methods(target, run_ids[phase.number]).values()) == {method}
    assert not _findings(target, run_ids[1])


def test_verify_target_on_a_clean_target_matches_every_row(migrated) -> None:
    legacy, target, _ = migrated
    results = verify.verify_target(legacy, target, run_id="rv-verify-clean")
    assert set(results) == {e.name for e in ALL}
    stored = _row_validation(target, "rv-verify-clean")
    for name, outcome in results.items():
        assert outcome.ok, (name, outcome)
        assert stored[name][0] == outcome.compared_rows == outcome.matched_rows
        assert outcome.method == "checksum", name
    assert set(_methods(target, "rv-verify-clean").values()) == {"checksum"}
    assert not _findings(target, "rv-verify-clean")
    with connect(target) as conn:
        left = conn.execute(
            "select count(*) from pg_tables where schemaname = 'staging'"
        ).fetchone()
    assert left == (0,), "verification leaves no staged legacy rows"


def _ids(conn: psycopg.Connection, query: str) -> list[int]:
    return [int(r[0]) for r in conn.execute(query).fetchall()]


def test_a_failed_rerun_after_a_validated_phase_makes_the_sign_off_not_ready(
    migrated, tmp_path
) -> None:
    """The sign_off teardown's call after a failed rerun: the summary says not ready.

    The phases ran through the step functions, without the backup task: verified backups are
    recorded here so that the summary starts ready; they and the failed run are removed again.
    """
    from include.entities import get_phase
    from migration_ops import runs
    from migration_ops.audit import signoff

    _, target, _ = migrated
    with connect(target) as conn:
        conn.execute(
            "insert into migration.backups (database, phase, reason, status, location, sha256, "
            "verified_at) select 'target', p, 'pytest', 'verified', '/nowhere', '0', now() "
            "from unnest(%s::int[]) as p",
            ([p.number for p in PHASES],),
        )
    signoff.write(target, tmp_path)
    ready = json.loads((tmp_path / "signoff/signoff.json").read_text())
    assert (ready["ready_to_sign"], ready["reasons"]) == (True, [])
    try:
        runs.begin_run(target, get_phase(1), "rv-phase-1-rerun", triggered_by="pytest", params={})
        assert runs.mark_failed(target, "rv-phase-1-rerun")
        signoff.write(target, tmp_path)
        failed = json.loads((tmp_path / "signoff/signoff.json").read_text())
        assert failed["ready_to_sign"] is False
        assert failed["reasons"] == [
            "phase 1: latest run failed",
            "phase 1: reconciliation does not balance",  # it failed before any checkpoint
        ]
        page = (tmp_path / "signoff/signoff.html").read_text()
        assert "<li>phase 1: latest run failed</li>" in page
        assert "Ready to sign" not in page
    finally:
        with connect(target) as conn:
            conn.execute("delete from migration.runs where run_id = 'rv-phase-1-rerun'")
            conn.execute("delete from migration.backups where reason = 'pytest'")


def test_verify_target_names_every_corrupted_missing_stray_and_changed_row(migrated) -> None:
    """Runs last: it corrupts the module's target and legacy copy."""
    legacy, target, run_ids = migrated
    with connect(target) as conn:
        a, b, c = _ids(
            conn,
            "select legacy_user_id from public.profiles where legacy_user_id is not null "
            "and last_login_at is not null order by legacy_user_id limit 3",
        )
        gone = _ids(
            conn,
            "select legacy_state_id from public.order_state_history "
            "where legacy_state_id is not null order by legacy_state_id limit 2",
        )
        (patient,) = conn.execute(
            # a patient without orders: an order's doctor is its patient's (orders transform)
            "select min(p.legacy_user_id) from public.profiles as p "
            "where p.patient_doctor_id is not null and p.patient_doctor_id <> "
            "(select id from public.profiles where legacy_user_id = %s) "
            "and p.legacy_user_id <> all(%s) "
            "and not exists (select 1 from public.orders as o where o.patient_id = p.id)",
            (a, [a, b, c]),
        ).fetchone()
        (category,) = _ids(
            conn,
            "select min(legacy_category_id) from public.workflow_categories "
            "where parent_id is not null",
        )
        # links resolved after the load: the patient's doctor points at another profile (a),
        # the category loses its parent
        conn.execute(
            "update public.profiles set patient_doctor_id = "
            "(select id from public.profiles where legacy_user_id = %s) where legacy_user_id = %s",
            (a, patient),
        )
        conn.execute(
            "update public.workflow_categories set parent_id = null where legacy_category_id = %s",
            (category,),
        )
        conn.execute(
            "update public.profiles set is_active = not is_active where legacy_user_id = %s", (a,)
        )
        conn.execute(
            "update public.profiles set last_name = 'Corrupted' where legacy_user_id = %s", (b,)
        )
        conn.execute(
            "delete from public.order_state_history where legacy_state_id = any(%s)", (gone,)
        )
        conn.execute(
            """
            insert into public.order_state_history (legacy_state_id, order_id, order_state_id,
                is_active, changed_at)
            select 990000001, order_id, order_state_id, is_active, changed_at
            from public.order_state_history order by legacy_state_id desc limit 1
            """
        )
    with connect(legacy) as conn:
        conn.execute(
            "update public.auth_user set last_login = last_login + interval '1 hour' where id = %s",
            (c,),
        )
    with pytest.raises(
        MigrationError, match=r"\['order_state_history', 'profiles', 'workflow_categories'\]"
    ):
        verify.verify_target(legacy, target, run_id="rv-verify-corrupt")
    assert _findings(target, "rv-verify-corrupt") == {
        ("profiles", a, "mismatch", "is_active"),
        ("profiles", b, "mismatch", "last_name"),
        ("profiles", c, "mismatch", "last_login_at"),
        ("profiles", patient, "mismatch", "patient_doctor_id"),
        ("workflow_categories", category, "mismatch", "parent_id"),
        ("order_state_history", gone[0], "missing", ""),
        ("order_state_history", gone[1], "missing", ""),
        ("order_state_history", 990000001, "unexpected", ""),
    }
    stored = _row_validation(target, "rv-verify-corrupt")
    after_load = _row_validation(target, run_ids[1])
    assert stored["profiles"][2:] == (4, 0, 0)
    assert stored["workflow_categories"][2:] == (1, 0, 0)
    assert stored["profiles"][0] == after_load["profiles"][0], "every loaded profile compared"
    assert stored["order_state_history"][2:] == (0, 2, 1)
    assert stored["offices"] == after_load["offices"]
    methods = _methods(target, "rv-verify-corrupt")
    assert methods["offices"] == "checksum", "an untouched entity needs no drill-down"
    assert methods["profiles"] == methods["order_state_history"] == "row_by_row"
    assert methods["workflow_categories"] == "row_by_row"
    with connect(target) as conn:
        status = conn.execute(
            "select status from migration.runs where run_id = 'rv-verify-corrupt'"
        ).fetchone()
    assert status == ("failed",)


def test_a_row_changed_between_load_and_verify_fails_the_entity(sandbox_dsn, supabase_db) -> None:
    """The step itself: a target row that differs right after the load fails the entity."""
    from include.entities import get_phase
    from include.entities.phase1_core import OFFICES
    from migration_ops import pipeline, runs

    target = supabase_db("rv_step")
    phase = get_phase(1)
    runs.apply_schema(target, phase)
    run = runs.begin_run(target, phase, "rv-step", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, run, [OFFICES])
    pipeline.transform_step(target, run, OFFICES)
    pipeline.validate_step(target, run, OFFICES, limit=pipeline.QuarantineLimit())
    pipeline.load_step(target, run, OFFICES)
    with connect(target) as conn:
        (first,) = _ids(conn, "select min(legacy_office_id) from public.offices")
        conn.execute(
            "update public.offices set name = name || '.' where legacy_office_id = %s", (first,)
        )
    with pytest.raises(
        MigrationError,
        match=r"rule row_validation.target_matches_legacy: .* 1 mismatched, 0 missing, 0 unexpected",
    ):
        pipeline.verify_step(target, run, OFFICES)
    assert _findings(target, "rv-step") == {("offices", first, "mismatch", "name")}
    assert _methods(target, "rv-step") == {"offices": "row_by_row"}
    with connect(target) as conn:
        stage = conn.execute(
            "select stage from migration.checkpoints where run_id = 'rv-step' and entity = 'offices'"
        ).fetchone()
    assert stage == ("loaded",), "not reconciled: the entity failed"
