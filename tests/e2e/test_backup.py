"""Backups on embedded PostgreSQL: dump in a snapshot, verification by restore, storage, rotation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from include.entities import get_phase
from include.transforms.rotation import RotationPolicy
from migration_ops import backup, local_env, runs
from migration_ops.dag_factory import build_phase_dag
from migration_ops.db import connect, scalar
from migration_ops.errors import MigrationError
from tests.s3_server import aws_connection, s3_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def target(pg_socket, tmp_path_factory):
    """A target with the phase 1 schema (seeded order types) and a few offices."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MIGRATION_BACKUP_DIR", str(tmp_path_factory.mktemp("backups")))
    dsn = local_env.ensure_supabase_database(pg_socket, "e2e_backup_target", recreate=True)
    runs.apply_schema(dsn, get_phase(1))
    with connect(dsn) as conn:
        conn.execute(
            "insert into public.offices (legacy_office_id, name, country_code) "
            "select i, 'office ' || i, 'US' from generate_series(1, 50) as i"
        )
    yield dsn
    mp.undo()


def manifest(dsn: str, backup_id: int) -> dict:
    with connect(dsn) as conn:
        row = conn.execute(
            "select status, location, size_bytes, sha256, row_counts, error, verified_at "
            "from migration.backups where backup_id = %s",
            (backup_id,),
        ).fetchone()
    return dict(
        zip(
            ("status", "location", "size", "sha256", "counts", "error", "verified_at"),
            row,
            strict=True,
        )
    )


def table_count(dsn: str, table: str) -> int:
    with connect(dsn) as conn:
        return int(scalar(conn, f"select count(*) from {table}"))


# ------------------------------------------------------------------ dump and verify
def test_backup_is_dumped_counted_and_verified(target) -> None:
    backup_id = backup.take_backup(target, reason="test", triggered_by="pytest")
    dumped = manifest(target, backup_id)
    assert dumped["status"] == "dumped"
    assert backup.file_digest(Path(dumped["location"])) == (dumped["sha256"], dumped["size"])
    assert dumped["counts"]["public.offices"] == 50
    assert dumped["counts"]["public.order_types"] == table_count(target, "public.order_types") == 5
    assert {"migration.runs", "migration.backups", "migration.audit_log"} <= dumped["counts"].keys()
    assert not any(t.startswith("staging.") for t in dumped["counts"]), "staging is never dumped"

    summary = backup.verify_backup(target, backup_id)
    verified = manifest(target, backup_id)
    assert verified["status"] == "verified" and verified["verified_at"] is not None
    assert summary == {"tables": len(dumped["counts"]), "rows": sum(dumped["counts"].values())}
    assert backup.verify_backup(target, backup_id) == summary, "verifying again is a no-op"
    with connect(target) as conn:
        scratch = scalar(
            conn, "select count(*) from pg_database where datname like 'migration_verify_%%'"
        )
    assert scratch == 0, "the scratch database is dropped"


def test_counts_and_dump_share_one_snapshot_under_concurrent_writes(target) -> None:
    """Rows inserted while the dump runs are in neither the counts nor the dump."""
    stop = threading.Event()

    def writer() -> None:
        with connect(target, autocommit=True) as conn:
            i = 1000
            while not stop.is_set():
                conn.execute(
                    "insert into public.offices (legacy_office_id, name, country_code) values (%s, 'w', 'US')",
                    (i,),
                )
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        backup_id = backup.take_backup(target, reason="concurrent writes", triggered_by="pytest")
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    backup.verify_backup(target, backup_id)
    counted = manifest(target, backup_id)["counts"]["public.offices"]
    assert 50 < counted < table_count(target, "public.offices")


# ------------------------------------------------------------------ failed verification
def test_a_corrupted_dump_fails_verification(target) -> None:
    backup_id = backup.take_backup(target, reason="to corrupt", triggered_by="pytest")
    path = Path(manifest(target, backup_id)["location"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(MigrationError, match="rule backup.checksum"):
        backup.verify_backup(target, backup_id)
    failed = manifest(target, backup_id)
    assert failed["status"] == "failed" and "sha256" in failed["error"]


def test_a_dump_that_does_not_restore_fails_verification(target) -> None:
    """Damaged before its checksum was taken: only the test restore can tell."""
    backup_id = backup.take_backup(target, reason="to truncate", triggered_by="pytest")
    path = Path(manifest(target, backup_id)["location"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with connect(target) as conn:
        conn.execute(
            "update migration.backups set sha256 = %s where backup_id = %s",
            (backup.file_digest(path)[0], backup_id),
        )

    with pytest.raises(MigrationError, match="rule backup.restore"):
        backup.verify_backup(target, backup_id)
    failed = manifest(target, backup_id)
    assert failed["status"] == "failed"
    assert '"' not in failed["error"] and "'" not in failed["error"], (
        "tool errors are cut before quoted values"
    )


def test_row_counts_that_differ_fail_verification(target) -> None:
    backup_id = backup.take_backup(target, reason="counts", triggered_by="pytest")
    with connect(target) as conn:
        conn.execute(
            "update migration.backups set row_counts = jsonb_set(row_counts, '{public.offices}', '1') "
            "where backup_id = %s",
            (backup_id,),
        )
    with pytest.raises(MigrationError, match=r"rule backup.row_counts.*public.offices \(1 dumped"):
        backup.verify_backup(target, backup_id)
    assert manifest(target, backup_id)["status"] == "failed"


def test_pg_dump_older_than_the_server_is_refused(target, tmp_path, monkeypatch) -> None:
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.22'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MIGRATION_PG_BIN", str(tmp_path))
    with pytest.raises(
        MigrationError,
        match=r"pg_dump is PostgreSQL 12 but the server is PostgreSQL 18.*MIGRATION_PG_BIN",
    ):
        backup.take_backup(target, reason="old tools", triggered_by="pytest")


# ------------------------------------------------------------------ legacy, S3, rotation
def test_legacy_database_backup_is_verified(target, sandbox_dsn) -> None:
    backup_id = backup.take_backup(
        target, reason="legacy", triggered_by="pytest", database="legacy", source_dsn=sandbox_dsn
    )
    backup.verify_backup(target, backup_id)
    done = manifest(target, backup_id)
    assert done["status"] == "verified"
    assert done["counts"]["public.auth_user"] == table_count(sandbox_dsn, "public.auth_user") > 0


def test_backups_go_to_s3_when_a_bucket_is_configured(supabase_db, monkeypatch) -> None:
    dsn = supabase_db("s3_target")
    with s3_server() as endpoint:
        monkeypatch.setenv("AIRFLOW_CONN_BACKUP_S3", aws_connection(endpoint))
        monkeypatch.setenv("MIGRATION_BACKUP_S3_BUCKET", "migration-backups")
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=backup.S3_CONN_ID)
        hook.create_bucket("migration-backups")

        older, newer = (
            backup.backup_and_verify(dsn, reason="to s3", triggered_by="pytest") for _ in range(2)
        )
        keys = {}
        for backup_id in (older, newer):
            stored = manifest(dsn, backup_id)
            assert stored["status"] == "verified"
            assert stored["location"].startswith("s3://migration-backups/migration-backups/target-")
            keys[backup_id] = stored["location"].removeprefix("s3://migration-backups/")
            assert hook.check_for_key(keys[backup_id], "migration-backups")
            assert not (backup.backup_dir() / Path(keys[backup_id]).name).exists(), (
                "no local copy left"
            )

        assert backup.prune(dsn, RotationPolicy(daily=0, weekly=0, monthly=0)) == [older]
        assert not hook.check_for_key(keys[older], "migration-backups")
        assert hook.check_for_key(keys[newer], "migration-backups")


def test_rotation_prunes_files_and_keeps_the_manifest(target, monkeypatch) -> None:
    ids = [
        backup.backup_and_verify(target, reason=f"rotation {i}", triggered_by="pytest")
        for i in range(3)
    ]
    with connect(target) as conn:
        # Spread them over three days, oldest first.
        for age, backup_id in zip((2, 1, 0), ids, strict=True):
            conn.execute(
                "update migration.backups set snapshot_at = now() - make_interval(days => %s) "
                "where backup_id = %s",
                (age, backup_id),
            )
    pruned = set(backup.prune(target, RotationPolicy(daily=1, weekly=0, monthly=0)))
    assert ids[-1] not in pruned, "the newest verified backup is kept"
    assert set(ids[:-1]) <= pruned
    for backup_id in ids[:-1]:
        row = manifest(target, backup_id)
        assert row["status"] == "pruned" and not Path(row["location"]).exists()
    assert Path(manifest(target, ids[-1])["location"]).exists()
    assert backup.prune(target, RotationPolicy(daily=1, weekly=0, monthly=0)) == []


def test_rotation_keeps_restore_points(target) -> None:
    """The backup a restore of a phase would use survives any policy."""
    point = backup.backup_and_verify(
        target, reason="before phase 1", triggered_by="pytest", phase=1
    )
    with connect(target) as conn:
        conn.execute(
            "insert into migration.runs (run_id, phase, dag_id, status) "
            "values ('backup-test-run', 1, 'probe', 'validated')"
        )
    newer = backup.backup_and_verify(target, reason="later", triggered_by="pytest")
    try:
        pruned = backup.prune(target, RotationPolicy(daily=0, weekly=0, monthly=0))
        assert point not in pruned and newer not in pruned
        assert manifest(target, point)["status"] == "verified"
    finally:
        with connect(target) as conn:
            conn.execute(
                "update migration.runs set status = 'rolled_back' where run_id = 'backup-test-run'"
            )


# ------------------------------------------------------------------ phase DAG wiring
def test_phase_dag_takes_a_verified_backup_before_anything_changes() -> None:
    dag = build_phase_dag(get_phase(1))
    dump, verify, begin = (
        dag.get_task(t) for t in ("backup.backup_dump", "backup.backup_verify", "begin")
    )
    assert verify.task_id in dump.downstream_task_ids
    assert begin.task_id in verify.downstream_task_ids
    assert dump.retries >= 2 and dump.doc_md
