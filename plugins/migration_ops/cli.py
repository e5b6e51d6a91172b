"""Command line behind ``make demo``, ``make migrate`` and ``make airflow``.

``demo``    start the embedded PostgreSQL and a local Supabase Storage stand-in, build (or
            reuse) the sandbox legacy database, prepare Airflow's metadata database, then
            ``migrate``.
``airflow`` the same environment, then ``airflow standalone`` (UI on port 8080).
``preflight`` / ``verify`` / ``report``: the auditor's commands (:mod:`migration_ops.audit.cli`).
``migrate`` run every phase DAG in order with ``airflow dags test`` against the
            connections ``AIRFLOW_CONN_LEGACY_DB`` / ``AIRFLOW_CONN_SUPABASE_DB``; stop and
            exit non-zero at the first phase that does not validate. Phase 5 (AI) runs only
            when ``MIGRATION_EMBEDDING_PROVIDER`` is set, and says so when it is not.
``sync``    run the nightly sync (``incremental_sync``) once the same way.
``dedup``   de-duplicate any CSV of person records (:mod:`migration_ops.dedup.cli`).
``unlink``  undo one linked patient cluster in the target (:mod:`migration_ops.dedup.step`).
``search``  ``--entity messages --query TEXT --k 5``: semantic search with the configured
            provider, printed as legacy id and similarity (never text).

When the Airflow connections or metadata database are not set in the environment, the
embedded databases are used; values the user set are never overridden.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from include.entities.spec import PhaseSpec
from migration_ops import airflow_runner, local_env
from migration_ops.settings import local_dir

if TYPE_CHECKING:
    from include.entities.spec import PhaseSpec

#: Port of the Storage stand-in for the demo and the local UI (Supabase's local default;
#: ``MIGRATION_STORAGE_PORT`` moves it when another program holds that port).
STORAGE_PORT = int(os.environ.get("MIGRATION_STORAGE_PORT", "54321"))

#: Settings that, when all present in the environment, mean no embedded database is needed.
USER_SETTINGS = (
    "AIRFLOW_CONN_LEGACY_DB",
    "AIRFLOW_CONN_SUPABASE_DB",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)


#: The auditor's commands (:mod:`migration_ops.audit.cli`).
AUDIT_COMMANDS = {
    "preflight": "read-only checks of both databases before phase 1 (drift, privileges, ...)",
    "verify": "row-level proof of the whole target against a fresh legacy snapshot",
    "report": "rewrite the latest run reports (HTML) and the sign-off summary",
}


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

    runner = _warm_runner()
    if not _airflow_db_ready(runner):
        return 2
    for phase in PHASES:
        if through is not None and phase.number > through:
            break
        if _needs_provider(phase) and not _provider_configured(phase):
            break
        if not _run_dag(phase, runner):
            print(
                f"phase {phase.number} did not validate; later phases were not started.",
                file=sys.stderr,
            )
            return 1
    from migration_ops.audit import signoff
    from migration_ops.connections import env_dsn

    print(f"sign-off summary (HTML): {signoff.write(env_dsn('supabase_db'))}")
    return 0


def sync() -> int:
    """Run the nightly sync once (``incremental_sync``); 0 when it validated."""
    from include.entities import SYNC

    runner = _warm_runner()
    if not _airflow_db_ready(runner):
        return 2
    if not _run_dag(SYNC, runner):
        print("the sync did not validate; the target keeps its last synced state.", file=sys.stderr)
        return 1
    return 0


def _airflow_db_ready(runner: airflow_runner.Runner) -> bool:
    if runner.run(["db", "migrate"], local_dir() / "logs" / "airflow-db-migrate.log") != 0:
        print("airflow db migrate failed; see .local/logs/airflow-db-migrate.log", file=sys.stderr)
        return False
    return True


def _warm_runner() -> airflow_runner.Runner:
    """Airflow imported once here; each phase's ``airflow dags test`` then starts warm."""
    runner = airflow_runner.Runner(
        Path(sys.executable).with_name("airflow"), local_dir() / "logs" / "airflow-preload.log"
    )
    runner.preload()
    return runner


def _run_dag(phase: PhaseSpec, runner: airflow_runner.Runner) -> bool:
    """``airflow dags test`` of one phase (or the sync); print its reconciliation table.

    Returns:
        whether the run validated.
    """
    from migration_ops import reports, runs
    from migration_ops.connections import env_dsn

    target = env_dsn("supabase_db")
    started = time.monotonic()
    log_path = local_dir() / "logs" / f"{phase.dag_id}.log"
    print(f"{phase.title} ({phase.dag_id}) ... ", end="", flush=True)
    code = runner.dags_test(phase.dag_id, log_path)
    status = runs.latest_run_status(target, phase.number)
    print(f"{status or 'not started'} in {time.monotonic() - started:.1f}s (log: {log_path})")
    if code != 0 or status != "validated":
        print(_tail(log_path), file=sys.stderr)
        return False
    run_id = _latest_run_id(target, phase.number)
    report = reports.directory_of(run_id)
    if not (report / "report.html").is_file():  # publish writes them once the run validated
        report = reports.write(target, run_id)
    print(reports.reconciliation_table(reports.collect(target, run_id)["reconciliation"]))
    print(f"reports: {report} (HTML: {report / 'report.html'})\n")
    return True


def _needs_provider(phase: PhaseSpec) -> bool:
    return any(entity.embedding is not None for entity in phase.entities)


def _provider_configured(phase: PhaseSpec) -> bool:
    """Phase 5 embeds: it runs only with a provider chosen on purpose (no silent default)."""
    from migration_ops.ai.providers import PROVIDER_SETTING, provider_setting

    name = provider_setting() or _airflow_variable(PROVIDER_SETTING)
    if name:
        print(f"phase {phase.number}: embedding provider {name}")
        return True
    print(
        f"phase {phase.number} ({phase.dag_id}) not started: no embedding provider configured. "
        f"Set {PROVIDER_SETTING} to bedrock, local or hashing (environment variable or Airflow "
        "Variable) and run `make migrate` again."
    )
    return False


def _airflow_variable(key: str) -> str | None:
    """An Airflow Variable from the metadata database (the CLI runs outside any task)."""
    log_path = local_dir() / "logs" / "airflow-variables-get.log"
    if _airflow("variables", "get", key, log_path=log_path) != 0:
        return None
    lines = log_path.read_text(encoding="utf-8").strip().splitlines()
    return lines[-1].strip().lower() if lines else None


def search(entity: str, query: str, k: int) -> int:
    """Print the top ``k`` matches of ``query`` as legacy id and similarity (never text)."""
    from migration_ops.ai import search as semantic
    from migration_ops.ai.providers import ProviderNotConfigured, configured_provider
    from migration_ops.connections import env_dsn

    try:
        provider = configured_provider()
    except ProviderNotConfigured as exc:
        print(exc, file=sys.stderr)
        return 2
    hits = semantic.search(env_dsn("supabase_db"), entity, query, provider, k=k)
    # messages from legacy comments carry the negated comment id (decision 0009)
    print(f"{'legacy_id':>10}  similarity")
    for hit in hits:
        print(f"{hit.legacy_id!s:>10}  {hit.similarity:.4f}")
    return 0


#: What ``make demo`` asks the migrated messages at the end (answered by ids, not text).
DEMO_QUESTION = "Which messages ask to rescan the upper molar?"


def _demo_search() -> None:
    print(f"semantic search over the migrated messages: {DEMO_QUESTION!r}")
    search("messages", DEMO_QUESTION, 5)


def _latest_phase_run(target_dsn: str) -> str | None:
    """The latest phase run (phases 1-5; not the sync, not a verification), if any."""
    from migration_ops.db import connect

    with connect(target_dsn) as conn:
        row = conn.execute(
            "select run_id from migration.runs where phase > 0 order by started_at desc limit 1"
        ).fetchone()
    return str(row[0]) if row else None


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
    # the demo's provider: deterministic and offline (production sets its own, see migrate).
    os.environ.setdefault("MIGRATION_EMBEDDING_PROVIDER", "hashing")
    legacy, media = _sandbox(scale, seed)
    with _local_storage(legacy, media):
        code = migrate()
    if code == 0:
        _demo_search()
    for line in demo_ending():
        print(line)
    return code


def demo_ending() -> list[str]:
    """The demo's last lines: where the latest HTML report and the sign-off summary are.

    Printed last (after the search), so the two pages an auditor opens are the last thing on
    the screen; a page not written yet (a phase failed first) is said to be missing.
    """
    from migration_ops import reports
    from migration_ops.audit import signoff
    from migration_ops.connections import env_dsn

    run_id = _latest_phase_run(env_dsn("supabase_db"))
    report = reports.directory_of(run_id) / "report.html" if run_id else None
    pages = (("HTML report", report), ("sign-off summary", signoff.path()))
    return [
        f"{label}: {page}" if page and page.is_file() else f"{label}: not written"
        for label, page in pages
    ]


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
    _unpause_followed_dags()
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


def followed_dag_ids() -> list[str]:
    """The DAGs that must run unattended: phases 2-5 follow their Asset, the sync its cron."""
    from include.entities import PHASES, SYNC

    return [*(phase.dag_id for phase in PHASES), SYNC.dag_id]


def unpause_commands(dag_ids: list[str]) -> list[list[str]]:
    """``airflow`` CLI calls that put the DAGs in the metadata DB and unpause them.

    ``is_paused_upon_creation=False`` only acts when a DAG is first seen: an existing
    ``.local/airflow`` where someone paused a phase would never follow phase 1's Asset.
    ``dags reserialize`` parses the DAGs first, so a fresh metadata DB knows them too; one
    ``dags unpause`` with an exact-match pattern of the ids (one CLI start, not one per DAG).
    """
    pattern = "^(" + "|".join(re.escape(dag_id) for dag_id in dag_ids) + ")$"
    return [
        ["dags", "reserialize"],
        ["dags", "unpause", "--treat-dag-id-as-regex", "--yes", pattern],
    ]


def _unpause_followed_dags() -> None:
    """Run :func:`unpause_commands` for :func:`followed_dag_ids`; warn when one fails."""
    for command in unpause_commands(followed_dag_ids()):
        log_path = local_dir() / "logs" / f"airflow-dags-{command[1]}.log"
        if _airflow(*command, log_path=log_path) != 0:
            print(f"airflow {' '.join(command)} failed; see {log_path}", file=sys.stderr)


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
    sub.add_parser("sync", help="run the nightly incremental sync once against the connections")
    from migration_ops.dedup import cli as dedup_cli

    dedup_cli.add_parser(sub)
    dedup_cli.add_unlink_parser(sub)
    for name, text in AUDIT_COMMANDS.items():
        sub.add_parser(name, help=text)
    search_parser = sub.add_parser(
        "search", help="semantic search: top matches as legacy id and similarity, no text"
    )
    search_parser.add_argument("--entity", required=True)
    search_parser.add_argument("--query", required=True)
    search_parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "search":
        _prepare_environment(force_embedded=False)
        return search(args.entity, args.query, args.k)
    if args.command == "dedup":
        return dedup_cli.run(args)
    if args.command == "unlink":
        _prepare_environment(force_embedded=False)
        return dedup_cli.run_unlink(args)
    if args.command == "demo":
        return demo(args.scale, args.seed)
    if args.command == "airflow":
        return airflow(args.scale, args.seed)
    _prepare_environment(force_embedded=False)
    if args.command in AUDIT_COMMANDS:
        from migration_ops.audit import cli as audit_cli

        return int(getattr(audit_cli, args.command)())
    if args.command == "sync":
        return sync()
    return migrate(args.through)


if __name__ == "__main__":
    sys.exit(main())
