"""Phases 1..N through real Airflow, timed: ``python -m migration_ops.cli migrate --through N``.

The same command as ``make migrate`` (``airflow dags test`` of each phase in order: backup,
preflight, extract, every entity's tasks, publish), pointed at the bench's legacy database
and a fresh, empty target on the embedded server, with the Storage stand-in serving the
sandbox's media as ``make demo`` does. Airflow's home and metadata database are the bench's
own (``.local/bench-airflow``, database ``bench_airflow``), kept between runs and migrated
before the clock starts, as they would be before a real ``make migrate``.

Memory: ``airflow dags test`` runs a phase's tasks inside its own process (Airflow's
in-process test supervisor), one process per phase, started by the ``migrate`` command.
:class:`bench_rss.PeakSampler` reads each descendant's ``VmHWM`` from ``/proc`` while the
command runs, per process (``airflow dags test <dag>``, ``airflow db migrate``, ``pg_dump``
...). The task figure is the largest ``airflow dags test`` process, which ran all of a
phase's tasks: an upper bound of any one task's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_rss import PeakSampler

from migration_ops import local_env
from migration_ops.local_storage import LocalStorageServer, write_expected_objects
from migration_ops.settings import local_dir

TARGET_DB = "bench_airflow_target"
METADATA_DB = "bench_airflow"


def airflow_environment(socket_dir: str, legacy_db: str) -> dict[str, str]:
    """This process's environment, with Airflow and both connections on the bench's databases."""
    env = {**os.environ, **local_env.environment(socket_dir)}
    metadata = local_env.ensure_database(socket_dir, METADATA_DB)
    env.update(
        {
            "AIRFLOW_HOME": str(local_dir() / "bench-airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
                "postgresql://", "postgresql+psycopg://", 1
            ),
            "AIRFLOW_CONN_LEGACY_DB": local_env.airflow_conn_uri(socket_dir, legacy_db),
            "AIRFLOW_CONN_SUPABASE_DB": local_env.airflow_conn_uri(socket_dir, TARGET_DB),
        }
    )
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def migrate_wall(socket_dir: str, legacy_db: str, media: Path, through: int) -> dict[str, Any]:
    """Wall seconds, exit code and peak RSS per process of ``migrate --through``, fresh target."""
    legacy = local_env.dsn(socket_dir, legacy_db)
    local_env.ensure_database(socket_dir, TARGET_DB, recreate=True)
    env = airflow_environment(socket_dir, legacy_db)
    logs = local_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    storage_root = local_dir() / "bench-storage"
    shutil.rmtree(storage_root, ignore_errors=True)  # fresh target, empty bucket
    listing = write_expected_objects(legacy, local_dir() / "bench-expected-objects.txt")
    airflow = str(Path(sys.executable).with_name("airflow"))
    with (logs / "bench-airflow-db-migrate.log").open("w", encoding="utf-8") as log:
        subprocess.run([airflow, "db", "migrate"], env=env, stdout=log, stderr=log, check=True)
    log_path = logs / "bench-migrate.log"
    with LocalStorageServer(storage_root) as storage, log_path.open("w", encoding="utf-8") as log:
        env["AIRFLOW_CONN_SUPABASE_STORAGE"] = storage.connection(media, expected_objects=listing)
        command = [sys.executable, "-m", "migration_ops.cli", "migrate", "--through", str(through)]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = PeakSampler(process.pid).start()
        code = process.wait()
        seconds = time.perf_counter() - started
        processes = sampler.stop()
    tasks = [mb for name, mb in processes.items() if name.startswith("airflow dags test")]
    return {
        "wall_s": round(seconds, 3),
        "exit_code": code,
        "task_peak_rss_mb": max(tasks, default=None),
        "processes": processes,
        "log": str(log_path),
    }
