"""Work not repeated when nothing changed (issue 20): DDL by fingerprint, backups by reuse.

Correctness only, no timings: the DDL runs again exactly when a file, the catalog or a
rollback calls for it; a pre-phase backup reuses the newest verified one only when ``public``
was not written since (every kind of write makes a new, verified dump), and a restore-mode
rollback works from a reused backup. On Supabase-shaped targets, as the non-superuser role.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from include.entities import get_phase
from include.transforms.rotation import RotationPolicy
from migration_ops import backup, db, rollback, runs, schema
from migration_ops.db import connect, scalar
from tests.e2e.conftest import run_phase

pytestmark = pytest.mark.e2e

PHASE_1, PHASE_2 = get_phase(1), get_phase(2)


@pytest.fixture(autouse=True)
def _backup_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MIGRATION_BACKUP_DIR", str(tmp_path / "backups"))


def _changed_text(monkeypatch, path: str, extra: str) -> None:
    """Make ``include/sql/<path>`` read as its text plus ``extra`` (a new version of the file)."""
    original = db.read_sql

    def read_sql(relative_path: str) -> str:
        text = original(relative_path)
        return text + extra if relative_path == path else text

    monkeypatch.setattr(db, "read_sql", read_sql)
    monkeypatch.setattr(schema, "read_sql", read_sql)


# ------------------------------------------------------------------ DDL fingerprints
def test_ddl_runs_once_then_only_when_a_file_changes(supabase_db, monkeypatch) -> None:
    target = supabase_db("ddl")
    first = runs.apply_schema(target, PHASE_1)
    assert first.applied == list(PHASE_1.schema_sql) and first.reason == "first application"
    assert runs.apply_schema(target, PHASE_2).applied == list(PHASE_2.schema_sql)
    again = runs.apply_schema(target, PHASE_1)
    assert again.applied == [] and again.skipped == list(PHASE_1.schema_sql)
    assert runs.apply_schema(target, PHASE_2).applied == []

    changed = "target/100_phase1_core.sql"
    _changed_text(monkeypatch, changed, "\ncomment on table public.offices is 'new text';\n")
    result = runs.apply_schema(target, PHASE_1)
    at = PHASE_1.schema_sql.index(changed)
    assert result.applied == list(PHASE_1.schema_sql[at:]), "the changed file and every later one"
    assert result.skipped == list(PHASE_1.schema_sql[:at]) and result.reason == "changed"
    with connect(target) as conn:
        comment = scalar(conn, "select obj_description('public.offices'::regclass)")
    assert comment == "new text", "the new text really ran"
    # 200 builds on 100: its fingerprint was forgotten, so it runs again on phase 2's next
    # run (and only it: the other fingerprints still hold), then not again.
    rerun = runs.apply_schema(target, PHASE_2)
    assert rerun.applied == list(PHASE_2.schema_sql) and rerun.reason == "first application"
    assert runs.apply_schema(target, PHASE_2).applied == []
    assert runs.apply_schema(target, PHASE_1).applied == []
    assert runs.apply_schema(target, PHASE_1, force=True).applied == list(PHASE_1.schema_sql)


def test_a_dropped_table_makes_every_file_apply_again(supabase_db) -> None:
    target = supabase_db("ddl_drop")
    runs.apply_schema(target, PHASE_1)
    runs.apply_schema(target, PHASE_2)
    with connect(target) as conn:
        conn.execute("drop table public.jaws cascade")
    result = runs.apply_schema(target, PHASE_1)
    assert result.applied == list(PHASE_1.schema_sql) and result.reason == "catalog changed"
    assert runs.apply_schema(target, PHASE_2).applied == list(PHASE_2.schema_sql)
    with connect(target) as conn:
        assert scalar(conn, "select to_regclass('public.jaws') is not null") is True


def test_a_delete_rollback_makes_the_next_run_seed_again(supabase_db) -> None:
    """Order types are seeded by phase 1's DDL and emptied by its delete rollback."""
    target = supabase_db("ddl_rollback")
    runs.apply_schema(target, PHASE_1)
    with connect(target) as conn:
        seeded = scalar(conn, "select count(*) from public.order_types")
    assert seeded > 0
    rollback.roll_back(target, 1, mode="delete", actor="pytest", confirm="1")
    with connect(target) as conn:
        assert scalar(conn, "select count(*) from public.order_types") == 0
    assert runs.apply_schema(target, PHASE_1).applied == list(PHASE_1.schema_sql)
    with connect(target) as conn:
        assert scalar(conn, "select count(*) from public.order_types") == seeded


# ------------------------------------------------------------------ backup reuse
def _target_with_rows(supabase_db: Callable[[str], str], name: str) -> str:
    target = supabase_db(name)
    runs.apply_schema(target, PHASE_1)
    with connect(target) as conn:
        conn.execute(
            "insert into public.offices (legacy_office_id, name, country_code) "
            "select i, 'office ' || i, 'US' from generate_series(1, 20) as i"
        )
    return target


def _pre_phase_backup(target: str) -> int:
    """What the phase DAG's backup group does before phase 2: dump (or reuse), then verify."""
    backup_id = backup.take_backup(
        target, reason="before phase 2", triggered_by="pytest", phase=2, reuse=True
    )
    backup.verify_backup(target, backup_id)
    return backup_id


def _row(target: str, backup_id: int) -> dict:
    with connect(target) as conn:
        cursor = conn.execute(
            "select status, location, sha256, reused_from, snapshot_at, verified_at, "
            "xid_horizon::text as xid_horizon, public_schema_md5 "
            "from migration.backups where backup_id = %s",
            (backup_id,),
        )
        values = cursor.fetchone()
        assert values is not None and cursor.description is not None
        return dict(zip([c.name for c in cursor.description], values, strict=True))


def test_an_unchanged_public_reuses_the_verified_backup(supabase_db) -> None:
    target = _target_with_rows(supabase_db, "reuse")
    first = _pre_phase_backup(target)
    original = _row(target, first)
    assert original["status"] == "verified" and original["reused_from"] is None
    assert original["xid_horizon"] and original["public_schema_md5"]
    with connect(target) as conn:  # the migration schema is history, not restored: no matter
        conn.execute("insert into migration.audit_log (actor, action) values ('pytest', 'x')")
    second = _pre_phase_backup(target)
    reused = _row(target, second)
    assert second != first and reused["reused_from"] == first
    assert reused["status"] == "verified" and reused["verified_at"] == original["verified_at"]
    assert (reused["location"], reused["sha256"]) == (original["location"], original["sha256"])
    assert reused["snapshot_at"] > original["snapshot_at"], "public proven the file's as of then"
    third = _pre_phase_backup(target)
    assert _row(target, third)["reused_from"] == first, "a reuse of a reuse names the dump"
    scheduled = backup.take_backup(target, reason="scheduled", triggered_by="pytest")
    assert _row(target, scheduled)["status"] == "dumped", "only pre-phase backups reuse"


WRITES = {
    "insert": [
        "insert into public.offices (legacy_office_id, name, country_code) values (999, 'new', 'US')"
    ],
    "update": ["update public.offices set name = name || '!' where legacy_office_id = 3"],
    "delete": ["delete from public.offices where legacy_office_id = 4"],
    "delete and insert": [
        "delete from public.offices where legacy_office_id = 5",
        "insert into public.offices (legacy_office_id, name, country_code) "
        "values (998, 'same count', 'US')",
    ],
    "new column": ["alter table public.offices add column note text"],
    "grant": ["grant select on public.offices to anon"],
    "policy": [
        "create policy test_policy on public.offices for select to authenticated using (false)"
    ],
}


@pytest.mark.parametrize("write", list(WRITES))
def test_any_write_to_public_takes_a_new_verified_backup(supabase_db, write) -> None:
    target = _target_with_rows(supabase_db, "reuse_write")
    first = _pre_phase_backup(target)
    with connect(target) as conn:
        for statement in WRITES[write]:
            conn.execute(statement)
    second = _pre_phase_backup(target)
    assert second != first
    taken = _row(target, second)
    assert taken["reused_from"] is None, f"{write}: a new dump"
    assert taken["status"] == "verified" and taken["sha256"] != _row(target, first)["sha256"]


def test_a_write_in_flight_during_the_backup_is_not_missed(supabase_db) -> None:
    """A transaction open while the backup's snapshot was taken (its row version written in a
    subtransaction) that commits afterwards is newer than the backup: a new dump."""
    target = _target_with_rows(supabase_db, "reuse_inflight")
    with psycopg.connect(target) as writer:
        writer.execute("savepoint a")
        writer.execute("update public.offices set name = 'in flight' where legacy_office_id = 7")
        first = _pre_phase_backup(target)
        writer.commit()
    second = _pre_phase_backup(target)
    assert second != first and _row(target, second)["reused_from"] is None


def test_rotation_keeps_the_file_a_reusing_backup_stands_for(supabase_db) -> None:
    target = _target_with_rows(supabase_db, "reuse_rotation")
    first = _pre_phase_backup(target)
    second = _pre_phase_backup(target)
    location = _row(target, first)["location"]
    assert _row(target, second)["reused_from"] == first
    # One a day is kept: the newest (the reuse); the original is pruned, its file is not.
    assert backup.prune(target, RotationPolicy(daily=1, weekly=0, monthly=0)) == [first]
    assert _row(target, second)["status"] == "verified"
    assert backup.store_for(location).size(location) is not None, "still the reuse's file"


# ------------------------------------------------------------------ through phase runs
def test_a_rollback_restores_from_a_reused_backup(
    supabase_db, sandbox_dsn, supabase_storage
) -> None:
    """Phase 1 run twice (the rerun writes nothing to public): the backup before phase 2 is a
    reuse; restore-mode rollback of phase 2 restores from it, and phase 2 runs again."""
    target = supabase_db("reuse_restore")
    _pre_phase_backup(target)
    run_phase(sandbox_dsn, target, PHASE_1, "p1_first")
    after_phase_1 = _pre_phase_backup(target)
    assert _row(target, after_phase_1)["reused_from"] is None, "phase 1 wrote public"
    run_phase(sandbox_dsn, target, PHASE_1, "p1_rerun")
    assert runs.apply_schema(target, PHASE_1).applied == [], "a phase run leaves the DDL as is"
    before_phase_2 = _pre_phase_backup(target)
    assert _row(target, before_phase_2)["reused_from"] == after_phase_1, "the rerun wrote nothing"
    run_phase(sandbox_dsn, target, PHASE_2, "p2_first")
    with connect(target) as conn:
        assert scalar(conn, "select count(*) from public.orders") > 0

    result = rollback.roll_back(target, 2, mode="restore", actor="pytest", confirm="2")
    assert result["backup_id"] == before_phase_2
    with connect(target) as conn:
        restored = backup.count_rows(conn, ["public"])
        counts = scalar(
            conn, "select row_counts from migration.backups where backup_id = %s", (after_phase_1,)
        )
    assert restored == {t: n for t, n in counts.items() if t.startswith("public.")}
    assert "public.orders" not in restored, "phase 2's tables did not exist before it"
    assert runs.apply_schema(target, PHASE_2).applied == list(PHASE_2.schema_sql)
    run_phase(sandbox_dsn, target, PHASE_2, "p2_again")
    assert runs.latest_run_status(target, 2) == "validated"
