"""Trustworthy runs: one snapshot per phase on a live legacy database, staging owned by a run
and empty once loaded, credentials never staged, dead runs recognised, live ones respected."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from include.entities import get_phase
from include.entities.phase1_core import OFFICES, PHASE_1, PROFILES
from migration_ops import local_env, pipeline, reports, runs
from migration_ops.db import connect, scalar
from migration_ops.errors import GateClosed, MigrationError
from migration_ops.validate import QuarantineLimit
from tests.e2e.audit_checks import rows_outside_public_and_migration
from tests.e2e.conftest import copy_of_sandbox

pytestmark = pytest.mark.e2e


class LegacyWriter(threading.Thread):
    """Keeps committing (office, patient of that office) pairs to legacy, one transaction each.

    In any single snapshot both rows of a pair are visible or neither is; records when each
    pair's transaction began and when its commit returned.
    """

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.pairs: list[tuple[int, int, datetime, datetime]] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn) as conn:
            while not self.stop.is_set():
                began = datetime.now(UTC)
                office = conn.execute(
                    "insert into dispatch_office (id, doctor_id, name, tax_rate, valid) "
                    "select max(id) + 1, min(id), 'Live Office', 0.05, true from dispatch_office "
                    "returning id"
                ).fetchone()[0]
                user = conn.execute(
                    "insert into auth_user (id, password, is_superuser, username, first_name, "
                    "last_name, email, is_staff, is_active, date_joined) "
                    "select max(id) + 1, 'x', false, 'live' || (max(id) + 1), 'L', 'P', '', "
                    "false, true, now() from auth_user returning id"
                ).fetchone()[0]
                patient = conn.execute(
                    "insert into dispatch_patient (id, user_id, office_id, status) "
                    "select max(id) + 1, %s, %s, 1 from dispatch_patient returning id",
                    (user, office),
                ).fetchone()[0]
                conn.commit()
                self.pairs.append((office, patient, began, datetime.now(UTC)))
                time.sleep(0.005)


def _extract_waiting_on_lock(legacy: str, table: str) -> bool:
    """Whether some legacy session waits for a lock on `table` (the held-up extract)."""
    with psycopg.connect(legacy, autocommit=True) as conn:
        return bool(
            scalar(
                conn,
                "select count(*) from pg_locks where not granted and relation = %s::regclass",
                (table,),
            )
        )


def test_every_entity_of_a_phase_reads_one_snapshot_while_legacy_writes(
    pg_socket, sandbox_dsn
) -> None:
    """Legacy commits pairs before the snapshot and, deterministically, after it.

    A test session holds `auth_user_groups` locked, so the extract (offices already read,
    patients not yet) waits after exporting its snapshot while the writer commits new pairs;
    a tiny sandbox extracts too fast to overlap otherwise.
    """
    legacy = copy_of_sandbox(pg_socket, "e2e_live_legacy")
    target = local_env.ensure_supabase_database(pg_socket, "e2e_live_target", recreate=True)
    runs.apply_schema(target, PHASE_1)
    run = runs.begin_run(target, PHASE_1, "live", triggered_by="pytest", params={})
    writer = LegacyWriter(legacy)
    writer.start()
    while len(writer.pairs) < 5:
        time.sleep(0.01)
    errors: list[BaseException] = []

    def extract() -> None:
        try:
            pipeline.extract_step(legacy, target, run, PHASE_1.ordered(), workers=1)
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    extractor = threading.Thread(target=extract, daemon=True)
    try:
        with psycopg.connect(legacy) as blocker:
            blocker.execute("lock table auth_user_groups in access exclusive mode")
            extractor.start()
            deadline = time.monotonic() + 60
            while not _extract_waiting_on_lock(legacy, "auth_user_groups"):
                assert time.monotonic() < deadline, "the extract never reached auth_user_groups"
                time.sleep(0.02)
            time.sleep(0.1)  # beyond the margin below
            committed_before_wait = len(writer.pairs)
            while len(writer.pairs) < committed_before_wait + 5:
                time.sleep(0.01)
            blocker.rollback()
        extractor.join(120)
    finally:
        writer.stop.set()
        writer.join(10)
    assert not errors, errors
    with connect(target) as conn:
        snapshot_at = scalar(conn, "select snapshot_at from migration.runs where run_id = 'live'")
        offices = {r[0] for r in conn.execute("select id from staging.offices__dispatch_office")}
        patients = {r[0] for r in conn.execute("select id from staging.profiles__dispatch_patient")}
    assert snapshot_at is not None, "the run records its snapshot's time"
    margin = timedelta(milliseconds=50)
    after = [p for p in writer.pairs if p[2] > snapshot_at + margin]
    before = [p for p in writer.pairs if p[3] < snapshot_at]
    assert len(before) >= 5, "pairs committed before the snapshot"
    assert len(after) >= 4, "pairs committed while the extract waited, after its snapshot"
    for office, patient, _, _ in writer.pairs:
        assert (office in offices) == (patient in patients), (
            f"office {office} and its patient {patient} were read from different snapshots"
        )
    assert all(office in offices for office, _, _, _ in before)
    assert not any(office in offices for office, _, _, _ in after)


def _staging_tables(dsn: str) -> list[str]:
    with connect(dsn) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select tablename from pg_tables where schemaname = 'staging' order by 1"
            )
        ]


def test_no_legacy_rows_rest_outside_public_and_migration_and_passwords_are_never_staged(
    pg_socket, sandbox_dsn
) -> None:
    target = local_env.ensure_supabase_database(pg_socket, "e2e_at_rest", recreate=True)
    runs.apply_schema(target, PHASE_1)
    run = runs.begin_run(target, PHASE_1, "at-rest", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, run, PHASE_1.ordered())
    with connect(target) as conn:
        staged_password = conn.execute(
            "select table_name from information_schema.columns "
            "where table_schema = 'staging' and column_name ilike '%password%'"
        ).fetchall()
    assert staged_password == [], "auth_user.password must never be staged"
    for entity in PHASE_1.ordered():
        pipeline.run_entity(target, run, entity, legacy_dsn=sandbox_dsn)
    runs.finish_run(target, run, PHASE_1)

    assert _staging_tables(target) == [], "reconciled entities leave nothing in staging"
    assert rows_outside_public_and_migration(target) == {}
    with connect(target) as conn:
        assert scalar(conn, "select count(*) from migration.staged_entities") == 0
        loaded = dict(conn.execute("select legacy_user_id, password_hash from public.profiles"))
    with connect(sandbox_dsn) as conn:
        legacy = dict(conn.execute("select id, password from auth_user"))
    assert loaded == {user: legacy[user] for user in loaded}, "hashes come straight from legacy"
    assert len(loaded) >= len(legacy) - 25


def test_a_step_refuses_staging_another_run_filled(pg_socket, sandbox_dsn) -> None:
    target = local_env.ensure_supabase_database(pg_socket, "e2e_staging_owner", recreate=True)
    runs.apply_schema(target, PHASE_1)
    old = runs.begin_run(target, PHASE_1, "old", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, old, [OFFICES])
    pipeline.transform_step(target, old, OFFICES)
    pipeline.validate_step(target, old, OFFICES, limit=QuarantineLimit())
    runs.mark_failed(target, "old")
    new = runs.begin_run(target, PHASE_1, "new", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, new, [OFFICES])
    with connect(target) as conn:  # the old run's begin is cleared and rerun in Airflow
        conn.execute("update migration.runs set status = 'running' where run_id = 'old'")

    with pytest.raises(MigrationError) as refused:
        pipeline.load_step(target, old, OFFICES)
    assert str(refused.value).startswith(
        "[offices] rule staging.owned_by_run: staging holds run new, not run old"
    )
    with connect(target) as conn:
        assert scalar(conn, "select count(*) from public.offices") == 0, "nothing loaded"
        assert scalar(conn, "select count(*) from migration.quarantine") == 0

    pipeline.run_entity(target, new, OFFICES)  # the owner goes on, then releases staging
    with pytest.raises(MigrationError, match=r"nothing is staged, not run old"):
        pipeline.transform_step(target, old, OFFICES)


def test_a_run_whose_process_is_dead_is_abandoned_a_live_one_refuses(supabase_db) -> None:
    target = supabase_db("run_owner")
    runs.apply_schema(target, PHASE_1)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    old_heartbeat = datetime.now(UTC) - timedelta(hours=7)
    cases = {
        "killed-here": (f"{host}:{dead.pid}", datetime.now(UTC), True),
        "alive-here": (f"{host}:{os.getpid()}", datetime.now(UTC), False),
        "silent-elsewhere": ("worker-2:4242", old_heartbeat, True),
        "recent-elsewhere": ("worker-2:4242", datetime.now(UTC), False),
    }
    for run_id, (owner, heartbeat, abandoned) in cases.items():
        runs.begin_run(target, PHASE_1, run_id, triggered_by="pytest", params={})
        with connect(target) as conn:
            conn.execute(
                "update migration.runs set owner = %s, heartbeat_at = %s where run_id = %s",
                (owner, heartbeat, run_id),
            )
        if abandoned:
            runs.begin_run(target, PHASE_1, f"after-{run_id}", triggered_by="pytest", params={})
            with connect(target) as conn:
                status, reason = conn.execute(
                    "select status, status_reason from migration.runs where run_id = %s",
                    (run_id,),
                ).fetchone()
            assert status == "failed", run_id
            assert (
                reason
                == f"abandoned: its process {owner} is gone; superseded by run after-{run_id}"
            )
        else:
            with pytest.raises(
                MigrationError, match=f"run {run_id} of this phase is still running"
            ):
                runs.begin_run(target, PHASE_1, f"after-{run_id}", triggered_by="pytest", params={})
            runs.mark_failed(target, run_id)
        runs.mark_failed(target, f"after-{run_id}")

    # an abandoned run's own tasks refuse to go on
    with pytest.raises(
        MigrationError, match=r"run killed-here is 'failed' \(abandoned: its process"
    ):
        pipeline.extract_step(
            "postgresql:///unused", target, runs.RunContext("killed-here", 1, ""), [PROFILES]
        )


def test_the_next_run_drops_the_staging_a_dead_run_left(pg_socket, sandbox_dsn) -> None:
    """A killed run's staging (legacy rows at rest) goes at the next begin, not the next extract.

    The dead run extracted every entity of phase 1 and transformed profiles; the next begin
    alone (no extract) drops what it staged, by name, and forgets its ownership.
    """
    target = local_env.ensure_supabase_database(pg_socket, "e2e_dead_staging", recreate=True)
    runs.apply_schema(target, PHASE_1)
    dead = runs.begin_run(target, PHASE_1, "dead", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, dead, PHASE_1.ordered())
    pipeline.transform_step(target, dead, PROFILES)
    left = _staging_tables(target)
    assert {t.split("__")[0] for t in left} == {e.name for e in PHASE_1.entities}
    exited = subprocess.Popen(["true"])
    exited.wait()
    with connect(target) as conn:
        conn.execute(
            "update migration.runs set owner = %s where run_id = 'dead'",
            (f"{socket.gethostname()}:{exited.pid}",),
        )

    runs.begin_run(target, PHASE_1, "next", triggered_by="pytest", params={})

    assert [t for t in _staging_tables(target) if t in left] == [], "the dead run's staging"
    assert _staging_tables(target) == []
    with connect(target) as conn:
        assert conn.execute(
            "select status from migration.runs where run_id = 'dead'"
        ).fetchone() == ("failed",)
        assert scalar(conn, "select count(*) from migration.staged_entities") == 0


def _validated_unconfirmed(target: str, run_id: str, owner: str) -> None:
    """A phase-1 run that committed `validated` in publish and whose process is ``owner``."""
    run = runs.begin_run(target, PHASE_1, run_id, triggered_by="pytest", params={})
    with connect(target) as conn:
        for entity in PHASE_1.entities:
            conn.execute(
                "insert into migration.reconciliation (run_id, phase, entity, source_rows, "
                "loaded_rows, merged_rows, quarantined_rows) values (%s, 1, %s, 0, 0, 0, 0)",
                (run_id, entity.name),
            )
    runs.finish_run(target, run, PHASE_1, asset=True)
    with connect(target) as conn:
        conn.execute("update migration.runs set owner = %s where run_id = %s", (owner, run_id))


def test_a_validated_run_killed_before_its_asset_never_opens_the_gate(
    supabase_db, tmp_path, monkeypatch
) -> None:
    """Publish commits `validated`, then its process dies before Airflow records the Asset.

    The next phase's gate demotes the run (and rewrites its report), unless the Asset events
    it read show the Asset was recorded (then only the confirmation was lost); a run whose
    process is still alive is in the middle of publishing and is left alone.
    """
    monkeypatch.setenv("MIGRATION_REPORTS_DIR", str(tmp_path))
    target = supabase_db("unpublished")
    runs.apply_schema(target, PHASE_1)
    exited = subprocess.Popen(["true"])
    exited.wait()
    dead = f"{socket.gethostname()}:{exited.pid}"
    _validated_unconfirmed(target, "killed", dead)
    written = reports.write(target, "killed")
    assert json.loads((written / "report.json").read_text())["run"]["status"] == "validated"

    with pytest.raises(GateClosed, match="phase 2 cannot start: phase 1 latest run is 'failed'"):
        runs.check_gate(target, get_phase(2))
    with connect(target) as conn:
        assert conn.execute(
            "select status, status_reason, published_at from migration.runs where run_id = 'killed'"
        ).fetchone() == (
            "failed",
            f"unpublished: validated, but its process {dead} died before its Asset was "
            "emitted; demoted by the gate",
            None,
        )
    assert json.loads((written / "report.json").read_text())["run"]["status"] == "failed"

    _validated_unconfirmed(target, "emitted", dead)
    runs.check_gate(target, get_phase(2), emitted={"emitted"})  # opens: the Asset exists
    _validated_unconfirmed(target, "publishing", f"{socket.gethostname()}:{os.getpid()}")
    runs.check_gate(target, get_phase(2))
    with connect(target) as conn:
        assert conn.execute(
            "select run_id, status, published_at is not null from migration.runs "
            "where run_id in ('emitted', 'publishing') order by run_id"
        ).fetchall() == [("emitted", "validated", True), ("publishing", "validated", False)]
