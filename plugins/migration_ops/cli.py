"""Command line behind ``make demo``, ``make migrate`` and ``make airflow``.

``demo``    start the embedded PostgreSQL and a local Supabase Storage stand-in, build (or
            reuse) the sandbox legacy database, prepare Airflow's metadata database, then
            ``migrate``.
``airflow`` the same environment, then ``airflow standalone`` (UI on port 8080).
``migrate`` run every phase DAG in order with ``airflow dags test`` against the
            connections ``AIRFLOW_CONN_LEGACY_DB`` / ``AIRFLOW_CONN_SUPABASE_DB``; stop and
            exit non-zero at the first phase that does not validate.

When the Airflow connections or metadata database are not set in the environment, the
embedded databases are used; values the user set are never overridden.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migration_ops import local_env
from migration_ops.settings import local_dir

#: Port of the Storage stand-in for the demo and the local UI (Supabase's local default;
#: ``MIGRATION_STORAGE_PORT`` moves it when another program holds that port).
STORAGE_PORT = int(os.environ.get("MIGRATION_STORAGE_PORT", "54321"))

#: Settings that, when all present in the environment, mean no embedded database is needed.
USER_SETTINGS = (
    "AIRFLOW_CONN_LEGACY_DB",
    "AIRFLOW_CONN_SUPABASE_DB",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)


def _prepare_environment(*, force_embedded: bool) -> None:
    """Point Airflow at the embedded databases wherever the user has not set their own.

    The embedded server is started only when something defaults to it.
    """
    if not force_embedded and all(os.environ.get(k) for k in USER_SETTINGS):
        os.environ.setdefault("AIRFLOW_HOME", str(local_dir() / "airflow"))
    else:
        socket_dir = local_env.start()
        for database in local_env.DEFAULT_DATABASES:
            local_env.ensure_database(socket_dir, database)
        for key, value in local_env.environment(socket_dir).items():
            if force_embedded and key.startswith("AIRFLOW_CONN_"):
                os.environ[key] = value
            else:
                os.environ.setdefault(key, value)
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)


def _airflow(*args: str, log_path: Path | None = None) -> int:
    """Run the ``airflow`` CLI of this virtual environment; output to a log file if given."""
    command = [str(Path(sys.executable).with_name("airflow")), *args]
    if log_path is None:
        return subprocess.call(command)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)


def migrate(through: int | None = None) -> int:
    """Run the phases in order (all, or up to phase ``through``); 0 when every one validated.

    Safe to run again after it was killed at any point: a run left ``running`` by a dead
    process is recognised and abandoned by the next run of its phase, which starts over from
    a fresh snapshot and converges to the same target (upserts by legacy id).
    """
    from include.entities import PHASES
    from migration_ops import reports, runs
    from migration_ops.connections import env_dsn

    if _airflow("db", "migrate", log_path=local_dir() / "logs" / "airflow-db-migrate.log") != 0:
        print("airflow db migrate failed; see .local/logs/airflow-db-migrate.log", file=sys.stderr)
        return 2
    target = env_dsn("supabase_db")
    for phase in PHASES:
        if through is not None and phase.number > through:
            break
        started = time.monotonic()
        log_path = local_dir() / "logs" / f"{phase.dag_id}.log"
        print(f"phase {phase.number} ({phase.dag_id}) ... ", end="", flush=True)
        code = _airflow("dags", "test", phase.dag_id, log_path=log_path)
        status = runs.latest_run_status(target, phase.number)
        elapsed = time.monotonic() - started
        print(f"{status or 'not started'} in {elapsed:.1f}s (log: {log_path})")
        if code != 0 or status != "validated":
            print(_tail(log_path), file=sys.stderr)
            print(
                f"phase {phase.number} did not validate; later phases were not started.",
                file=sys.stderr,
            )
            return 1
        run_id = _latest_run_id(target, phase.number)
        report = reports.write(target, run_id)
        print(reports.reconciliation_table(reports.collect(target, run_id)["reconciliation"]))
        print(f"reports: {report}\n")
    return 0


def _latest_run_id(target_dsn: str, phase_number: int) -> str:
    from migration_ops.db import connect

    with connect(target_dsn) as conn:
        row = conn.execute(
            "select run_id from migration.runs where phase = %s order by started_at desc limit 1",
            (phase_number,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def _tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log, to show why a phase failed without opening the file."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _sandbox(scale: float, seed: int) -> tuple[str, Path]:
    """Build the sandbox legacy database and its media store once; return (DSN, media root)."""
    from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists
    from migration_ops.connections import env_dsn

    legacy = env_dsn("legacy_db")
    media = local_dir() / "media"
    if sandbox_exists(legacy, scale, seed) and media_complete(legacy, media):
        print(f"sandbox legacy database (scale {scale}, seed {seed}) already built: reusing it")
    else:
        print(f"building the sandbox legacy database (scale {scale}, seed {seed}) ...", flush=True)
        logging.getLogger("include.sandbox").setLevel(logging.WARNING)  # per-table lines: noise
        started = time.monotonic()
        counts = build_sandbox(legacy, scale=scale, seed=seed, media_dir=media)
        elapsed = time.monotonic() - started
        print(f"  {sum(counts.values())} rows in {len(counts)} tables, {elapsed:.1f}s")
    return legacy, media


@contextmanager
def _local_storage(legacy: str, media: Path) -> Iterator[None]:
    """Serve the Supabase Storage stand-in (bytes under ``.local/storage``) while in the block.

    Its scope is the sandbox's media manifest, since the sandbox writes bytes for a fraction
    of its files only; ``AIRFLOW_CONN_SUPABASE_STORAGE`` points the migration at it.
    """
    from migration_ops.local_storage import LocalStorageServer, write_expected_objects

    listing = write_expected_objects(legacy, local_dir() / "storage-expected-objects.txt")
    with LocalStorageServer(local_dir() / "storage", port=STORAGE_PORT) as storage:
        os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"] = storage.connection(
            media, expected_objects=listing
        )
        yield


def demo(scale: float, seed: int) -> int:
    """Whole migration on the embedded default, sandbox built once and reused."""
    _prepare_environment(force_embedded=True)
    legacy, media = _sandbox(scale, seed)
    with _local_storage(legacy, media):
        return migrate()


def airflow(scale: float, seed: int) -> int:
    """A local Airflow (``airflow standalone``) on the embedded databases and Storage stand-in.

    Real login (user ``admin``, password printed at start), the ``migration_target`` pool
    created, phase DAGs unpaused: triggering phase 1 in the UI runs phases 2-4 through their
    Assets, and the migration dashboard is at ``/migration/``.
    """
    _prepare_environment(force_embedded=True)
    legacy, media = _sandbox(scale, seed)
    password = _login_settings()
    port = os.environ.setdefault("AIRFLOW__API__PORT", "8080")
    os.environ.setdefault(
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://localhost:{port}/execution/"
    )
    # standalone starts its components as `airflow ...`: this environment's must come first.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    if _airflow("db", "migrate", log_path=local_dir() / "logs" / "airflow-db-migrate.log") != 0:
        print("airflow db migrate failed; see .local/logs/airflow-db-migrate.log", file=sys.stderr)
        return 2
    _import_pools()
    with _local_storage(legacy, media):
        url = f"http://localhost:{port}"
        print(
            f"Airflow UI: {url} (user admin, password {password}); "
            f"migration dashboard: {url}/migration/. Ctrl-C stops."
        )
        return _airflow("standalone")


def _login_settings() -> str:
    """Airflow's simple auth manager with one admin whose password is kept in .local/airflow.

    The password is generated once and reused, so a bookmarked login keeps working.
    """
    import json
    import secrets

    path = Path(os.environ["AIRFLOW_HOME"]) / "passwords.json"
    if not path.exists():
        path.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}), encoding="utf-8")
        path.chmod(0o600)
    os.environ.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", None)
    os.environ.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    os.environ.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(path))
    return str(json.loads(path.read_text(encoding="utf-8"))["admin"])


def _import_pools() -> None:
    """Create the pools the phase DAGs use (``migration_target``); idempotent."""
    from migration_ops.pools import write_pool_file

    pool_file = write_pool_file(local_dir() / "airflow-pools.json")
    _airflow("pools", "import", str(pool_file), log_path=local_dir() / "logs" / "pools.log")


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m migration_ops.cli {demo,migrate,airflow}``."""
    parser = argparse.ArgumentParser(prog="python -m migration_ops.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="sandbox + full migration on the embedded databases")
    airflow_parser = sub.add_parser("airflow", help="local Airflow UI on the embedded databases")
    for sub_parser in (demo_parser, airflow_parser):
        default_scale = float(os.environ.get("SCALE", "0.02"))
        sub_parser.add_argument("--scale", type=float, default=default_scale)
        sub_parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "7")))
    migrate_parser = sub.add_parser(
        "migrate", help="run the phases in order against the configured connections"
    )
    migrate_parser.add_argument(
        "--through", type=int, default=None, help="stop after this phase (default: all)"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.scale, args.seed)
    if args.command == "airflow":
        return airflow(args.scale, args.seed)
    _prepare_environment(force_embedded=False)
    return migrate(args.through)


if __name__ == "__main__":
    sys.exit(main())
