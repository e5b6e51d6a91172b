"""The real Airflow path: `make migrate`'s CLI runs each phase with `airflow dags test`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.entities import PHASES
from migration_ops import local_env, runs
from migration_ops.db import connect, scalar

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
ROOT = Path(__file__).resolve().parents[2]


def migrate_cli(
    tmp_path: Path, pg_socket: str, legacy_db: str, target_db: str
) -> subprocess.CompletedProcess[str]:
    """Run `python -m migration_ops.cli migrate` against the given test databases.

    Supabase Storage is the ``supabase_storage`` fixture's server when a test started it.
    """
    metadata = local_env.ensure_database(pg_socket, f"{target_db}_airflow", recreate=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MIGRATION_"))},
        **local_env.environment(pg_socket),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
            "postgresql://", "postgresql+psycopg://"
        ),
        "AIRFLOW_CONN_LEGACY_DB": local_env.airflow_conn_uri(pg_socket, legacy_db),
        "AIRFLOW_CONN_SUPABASE_DB": local_env.airflow_conn_uri(pg_socket, target_db),
        "MIGRATION_LOCAL_DIR": str(tmp_path / "local"),
        "MIGRATION_REPORTS_DIR": str(tmp_path / "reports"),
    }
    if "AIRFLOW_CONN_SUPABASE_STORAGE" in os.environ:
        env["AIRFLOW_CONN_SUPABASE_STORAGE"] = os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"]
    return subprocess.run(
        [sys.executable, "-m", "migration_ops.cli", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def asset_events(pg_socket: str, target_db: str) -> dict[str, int]:
    """Asset events Airflow recorded in the metadata database of a migrate_cli run."""
    with connect(local_env.dsn(pg_socket, f"{target_db}_airflow")) as conn:
        rows = conn.execute(
            "select a.uri, count(*) from asset_event as e join asset as a on a.id = e.asset_id "
            "group by a.uri"
        ).fetchall()
    return {uri: int(n) for uri, n in rows}


def test_migrate_runs_every_phase_through_airflow(
    tmp_path, pg_socket, sandbox_dsn, supabase_storage
) -> None:
    target = local_env.ensure_database(pg_socket, "e2e_airflow_target", recreate=True)
    result = migrate_cli(tmp_path, pg_socket, "e2e_legacy", "e2e_airflow_target")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "balanced" in result.stdout
    for phase in PHASES:
        assert runs.latest_run_status(target, phase.number) == "validated", phase.dag_id
    assert len(list((tmp_path / "reports").glob("*/reconciliation.md"))) == len(PHASES)
    # phase 1's dedup task (with its typed params) linked the sandbox's duplicate patient
    assert len(list((tmp_path / "reports").glob("*/dedup.md"))) == 1
    assert asset_events(pg_socket, "e2e_airflow_target") == {p.asset_uri: 1 for p in PHASES}
    with connect(target) as conn:
        assert (
            scalar(conn, "select count(*) from migration.audit_log where action = 'run_phase'") >= 1
        )
        assert (
            scalar(
                conn, "select merged_rows from migration.reconciliation where entity = 'profiles'"
            )
            == 1
        )


def test_migrate_exits_non_zero_when_a_phase_fails(tmp_path, pg_socket, make_db) -> None:
    broken_legacy = make_db("broken_legacy")  # empty: every extract hits schema drift
    target = make_db("broken_target")
    result = migrate_cli(
        tmp_path,
        pg_socket,
        broken_legacy.split("/")[-1].split("?")[0],
        target.split("/")[-1].split("?")[0],
    )
    assert result.returncode != 0
    assert "did not validate" in result.stderr
    assert asset_events(pg_socket, target.split("/")[-1].split("?")[0]) == {}, (
        "a failed phase must not emit its Asset (it would schedule the next phase)"
    )
    assert runs.latest_run_status(target, 1) == "failed", "record_failure must mark the run failed"
