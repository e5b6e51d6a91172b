"""A failing task's log holds the value-free message, never the value its error quoted.

One small DAG run through Airflow (``airflow dags test``) of real task callables of the
phase DAGs, each made to fail by a real error source fed a marker that stands for PHI:
PostgreSQL through psycopg (preflight), PostgreSQL through SQLAlchemy (begin), Great
Expectations' own validation (backup verify) and an HTTP client talking to the local Storage
stand-in (sign-off). The failures are injected into the Airflow process by a
``sitecustomize`` module. ``airflow dags test`` runs the tasks in its own process and their
logs go to its output, which the runner ``make migrate`` uses writes to the run's log file;
that file and every other file Airflow wrote are then read: the marker is in none of them,
and each task's failure is logged as its entity, rule and step. That every task of every DAG
carries the same wrapper is
``tests/dags/test_dag_integrity.py::test_every_task_fails_without_values``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from migration_ops import airflow_runner
from migration_ops.local_storage import LocalStorageServer
from tests.e2e.audit_checks import phi_found
from tests.e2e.kill_harness import migrate_env

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "value_free_errors"
#: Stands for a patient's name: a whole word nothing else in a log would contain.
MARKER = "Marigold Testpatient-5521"

#: The DAG: four real task callables of the phase DAGs, independent, no retries.
DAG_FILE = f'''
from datetime import UTC, datetime

from airflow.sdk import DAG

from migration_ops.dag_factory import backup_verify, begin, preflight, sign_off

with DAG(
    dag_id="{DAG_ID}",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={{"retries": 0}},
):
    preflight()
    begin(1)
    backup_verify(7)
    sign_off()
'''

#: What each task's product call does instead, in the Airflow process.
FAULTS = """
import os

marker = os.environ.get("MIGRATION_TEST_MARKER")
if marker:
    from migration_ops import backup, runs
    from migration_ops.audit import preflight, signoff

    def psycopg_error(legacy_dsn, target_dsn, directory=None):
        from migration_ops.db import connect

        with connect(target_dsn) as conn:  # invalid input syntax for type integer: "<marker>"
            conn.execute("select %s::integer", (marker,))

    def sqlalchemy_error(target_dsn, phase):
        import sqlalchemy

        from migration_ops.validate import sqlalchemy_url

        engine = sqlalchemy.create_engine(sqlalchemy_url(target_dsn))
        with engine.connect() as conn:  # quotes the statement and its parameters
            conn.execute(sqlalchemy.text("select cast(:name as integer)"), {"name": marker})

    def gx_error(target_dsn, backup_id):
        import great_expectations as gx

        # GX (pydantic) quotes the offending input
        gx.expectations.ExpectColumnValuesToBeInSet(column="name", value_set=marker, mostly=marker)

    def http_error(target_dsn, directory=None):
        import httpx

        response = httpx.get(  # the object key, a legacy file name, is in the URL
            os.environ["MIGRATION_TEST_STORAGE_URL"] + "/storage/v1/object/legacy-files/"
            + marker + ".stl",
            headers={"Authorization": "Bearer " + os.environ["MIGRATION_TEST_STORAGE_KEY"]},
        )
        response.raise_for_status()

    preflight.require_preflight = psycopg_error
    runs.apply_schema = sqlalchemy_error
    backup.verify_backup = gx_error
    signoff.write = http_error
"""

#: task id → the value-free message its log must show (``.*`` where a code location goes).
EXPECTED = {
    "preflight": r"\[preflight\] rule database\.22P02: preflight failed in the database "
    r"\(SQLSTATE 22P02\); values withheld",
    "begin": r"\[run\] rule database\.22P02: begin failed in the database "
    r"\(SQLSTATE 22P02\); values withheld",
    "backup_verify": r"\[backup\] rule verify\.error: verify failed: "
    r"pydantic[\w.]*\.ValidationError at \S+:\d+ in \w+; values withheld",
    "sign_off": r"\[signoff\] rule sign_off\.error: sign_off failed: httpx\.HTTPStatusError "
    r"at \S+:\d+ in \w+ \(HTTP 4\d\d\); values withheld",
}


def _use_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``env`` this process's environment (the runner's ``airflow`` inherits it)."""
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_failed_tasks_log_the_rule_and_entity_never_the_value(
    tmp_path, pg_socket, make_db, supabase_db, monkeypatch
) -> None:
    legacy_db = make_db("vf_legacy").split("/")[-1].split("?")[0]
    target_db = supabase_db("vf_target").split("/")[-1].split("?")[0]
    env = migrate_env(tmp_path, pg_socket, legacy_db, target_db)
    injected = tmp_path / "faults"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(FAULTS, encoding="utf-8")
    dag_file = tmp_path / "dags" / f"{DAG_ID}.py"
    dag_file.parent.mkdir()
    dag_file.write_text(DAG_FILE, encoding="utf-8")
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dag_file.parent)
    # the runner `make migrate` uses: `airflow dags test` runs the tasks in its own process
    # and their logs go to its output, which the runner writes to the run's log file
    runner = airflow_runner.Runner(Path(sys.executable).with_name("airflow"), tmp_path / "pre")
    logs = tmp_path / "local" / "logs"
    with LocalStorageServer(tmp_path / "storage") as storage:
        _use_env(env, monkeypatch)
        assert runner.run(["db", "migrate"], logs / "airflow-db-migrate.log") == 0
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(injected), env["PYTHONPATH"]]))
        monkeypatch.setenv("MIGRATION_TEST_MARKER", MARKER)
        monkeypatch.setenv("MIGRATION_TEST_STORAGE_URL", storage.url)
        monkeypatch.setenv("MIGRATION_TEST_STORAGE_KEY", storage.key)
        code = runner.run(
            ["dags", "test", DAG_ID, "--dagfile-path", str(dag_file)], logs / f"{DAG_ID}.log"
        )
    text = (logs / f"{DAG_ID}.log").read_text(encoding="utf-8")
    assert code != 0, "the DAG run failed"
    failed = re.findall(r"\[DAG TEST\] end task task_id=(\w+)", text)
    assert sorted(failed) == sorted(EXPECTED), text[-3000:]
    files = sorted(p for root in ("airflow", "local") for p in (tmp_path / root).rglob("*"))
    files = [p for p in files if p.is_file()]
    phi = {"name": {MARKER}, "email": set(), "birth date": set(), "message text": set()}
    assert phi_found(files, phi) == []
    assert "Testpatient-5521" not in text
    for task, pattern in EXPECTED.items():
        assert len(re.findall(pattern, text)) == 1, f"{task}: {text[-3000:]}"
