"""Kill `make migrate` (SIGKILL to its whole process group) at a chosen moment, run it again,
and compare the target with a clean full load: same rows by legacy id, same open quarantine.

Used by ``tests/e2e/test_kill_converges.py`` (fixed kill points) and
``scripts/kill_converge.py`` (random moments, N times in a row). The moments are recognised
by watching the databases, never by hooks in the product: ``pg_stat_activity`` shows which
step is working (every session is tagged with ``application_name``), ``migration.runs``
shows when a phase has validated.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg import sql

from include.entities import PHASES
from migration_ops import local_env
from migration_ops.db import connect, qualified

ROOT = Path(__file__).resolve().parents[2]

#: What each kill point waits for, as a query on the server (any database) returning a row.
KILL_POINTS: dict[str, str] = {
    "backup": (
        "select 1 from pg_stat_activity where application_name in ('pg_dump', 'pg_restore') "
        "or application_name like 'migration:backup%%'"
    ),
    "extract": (
        "select 1 from pg_stat_activity where application_name like 'migration:extract:%%' "
        "and state = 'active'"
    ),
}
#: The ``load`` kill point: held inside a load's transaction (see :func:`_kill_inside_a_load`).
LOAD = "load"


def migrate_env(
    workdir: Path,
    pg_socket: str,
    legacy_db: str,
    target_db: str,
    *,
    fresh_metadata: bool = True,
) -> dict[str, str]:
    """Environment for ``python -m migration_ops.cli migrate`` on the given test databases.

    The target is reached as the non-superuser Supabase-shaped role (create it with
    ``local_env.ensure_supabase_database``).
    Supabase Storage is the ``supabase_storage`` fixture's server when a test started it.
    """
    metadata = local_env.ensure_database(pg_socket, f"{target_db}_airflow", recreate=fresh_metadata)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MIGRATION_"))},
        **local_env.environment(pg_socket),
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
            "postgresql://", "postgresql+psycopg://"
        ),
        "AIRFLOW_CONN_LEGACY_DB": local_env.airflow_conn_uri(pg_socket, legacy_db),
        "AIRFLOW_CONN_SUPABASE_DB": local_env.airflow_conn_uri(
            pg_socket, target_db, login=local_env.SUPABASE_ROLE
        ),
        "MIGRATION_LOCAL_DIR": str(workdir / "local"),
        "MIGRATION_REPORTS_DIR": str(workdir / "reports"),
        # phase 5 runs only with a provider chosen on purpose: the tests' offline one
        "MIGRATION_EMBEDDING_PROVIDER": os.environ.get("MIGRATION_EMBEDDING_PROVIDER", "hashing"),
    }
    if "AIRFLOW_CONN_SUPABASE_STORAGE" in os.environ:
        env["AIRFLOW_CONN_SUPABASE_STORAGE"] = os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"]
    return env


def migrate_command(through: int | None) -> list[str]:
    """The command ``make migrate`` runs (optionally stopping after phase ``through``)."""
    extra = ["--through", str(through)] if through else []
    return [sys.executable, "-m", "migration_ops.cli", "migrate", *extra]


def _phase_validated(phase: int) -> Callable[[str, str], bool]:
    def reached(server_dsn: str, target_dsn: str) -> bool:
        with connect(target_dsn, autocommit=True) as conn:
            exists = conn.execute("select to_regclass('migration.runs')").fetchone()
            if not exists or exists[0] is None:
                return False
            row = conn.execute(
                "select 1 from migration.runs where phase = %s and status = 'validated'", (phase,)
            ).fetchone()
        return row is not None

    return reached


def _activity(query: str) -> Callable[[str, str], bool]:
    def reached(server_dsn: str, target_dsn: str) -> bool:
        with connect(server_dsn, autocommit=True) as conn:
            return conn.execute(query).fetchone() is not None

    return reached


def kill_condition(point: str) -> Callable[[str, str], bool]:
    """``backup``, ``extract`` or ``after-phase-N`` (between phases N and N+1)."""
    if point.startswith("after-phase-"):
        return _phase_validated(int(point.rsplit("-", 1)[1]))
    return _activity(KILL_POINTS[point])


def kill_at(
    env: dict[str, str],
    server_dsn: str,
    target_dsn: str,
    *,
    point: str | None = None,
    after_seconds: float | None = None,
    through: int | None = None,
    timeout: float = 600,
) -> str:
    """Start ``migrate``, SIGKILL its process group at ``point`` (or after a delay).

    Returns:
        what happened: ``killed at <point>`` / ``killed after <s>s``, or ``finished`` when
        the run ended before the moment came. At ``load``: ``killed at load`` followed by
        the entity and the stage its checkpoint was left at (see :func:`_kill_inside_a_load`).
    """
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        migrate_command(through),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes every child with it
    )
    deadline = time.monotonic() + (after_seconds if after_seconds is not None else timeout)
    if point == LOAD:
        return _kill_inside_a_load(process, server_dsn, target_dsn, deadline)
    reached = kill_condition(point) if point else None
    while process.poll() is None and time.monotonic() < deadline:
        if reached is not None and reached(server_dsn, target_dsn):
            break
        time.sleep(0.01)
    if process.poll() is not None:
        return "finished"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return f"killed at {point}" if point else f"killed after {after_seconds:.1f}s"


def _kill_inside_a_load(
    process: subprocess.Popen[bytes], server_dsn: str, target_dsn: str, deadline: float
) -> str:
    """SIGKILL ``process`` while one of its loads is provably inside its transaction.

    A load writes its ``loaded`` checkpoint last in its transaction. As soon as a load
    session shows up, its entity's checkpoint row (of the running run) is locked here, so the
    load blocks on it with its rows written but not committed; it is killed while it waits.
    A load seen too late (its checkpoint already ``loaded``) is let go and the next is taken.

    Returns:
        ``killed at load: <entity> checkpoint left at <stage>`` (read once the killed
        session is gone), or ``finished`` when no load could be caught.
    """
    with connect(target_dsn) as blocker, connect(server_dsn, autocommit=True) as monitor:
        while process.poll() is None and time.monotonic() < deadline:
            seen = monitor.execute(
                "select substr(application_name, 16) from pg_stat_activity "
                "where application_name like 'migration:load:%%' and state <> 'idle' limit 1"
            ).fetchone()
            held = (
                seen
                and blocker.execute(
                    "select c.run_id, c.stage from migration.checkpoints as c "
                    "join migration.runs as r using (run_id) "
                    "where c.entity = %s and r.status = 'running' for update of c",
                    (seen[0],),
                ).fetchone()
            )
            if not held or held[1] == "loaded" or not (pid := _waiting_load(monitor, seen[0])):
                blocker.rollback()
                time.sleep(0.01)
                continue
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            blocker.rollback()
            while monitor.execute(
                "select 1 from pg_stat_activity where pid = %s", (pid,)
            ).fetchone():
                time.sleep(0.05)
            stage = blocker.execute(
                "select stage from migration.checkpoints where run_id = %s and entity = %s",
                (held[0], seen[0]),
            ).fetchone()
            blocker.rollback()
            return f"killed at load: {seen[0]} checkpoint left at {stage[0]}"
    return "finished"


def _waiting_load(monitor: Any, entity: str, seconds: float = 60) -> int | None:
    """The pid of the entity's load session once it waits for a lock (``None``: it ended)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        row = monitor.execute(
            "select pid, wait_event_type from pg_stat_activity "
            "where application_name = %s and state <> 'idle'",
            (f"migration:load:{entity}",),
        ).fetchone()
        if row is None:
            return None
        if row[1] == "Lock":
            return int(row[0])
        time.sleep(0.01)
    return None


def run_to_end(env: dict[str, str], through: int | None, timeout: float = 900) -> int:
    """Run ``migrate`` once more, to the end; return its exit code."""
    return subprocess.run(  # noqa: S603 - our own CLI
        migrate_command(through),
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    ).returncode


#: Columns that record when (and how often) the migration did its work, not what it migrated:
#: row timestamps and phase 5's queue bookkeeping (a killed embed retried counts one more try).
WORK_TIMES = ("created_at", "updated_at", "enqueued_at", "next_attempt_at", "attempts")


def comparable(target_dsn: str, through: int | None = None) -> dict[str, Any]:
    """Every migrated row without generated ids and timestamps, plus the open quarantine.

    A foreign key (a generated uuid) is compared as the natural key of the row it points at
    (its legacy id), so two loads that link a child to different parents differ. Two targets
    loaded from the same legacy database compare equal exactly when they hold the same rows
    by legacy id, linked the same way, and hold back the same rows under the same rules.
    """
    phases = [p for p in PHASES if through is None or p.number <= through]
    natural = {e.target_table: e.conflict_key for p in PHASES for e in p.entities}
    result: dict[str, Any] = {}
    with connect(target_dsn) as conn:
        for phase in phases:
            for entity in phase.entities:
                result[entity.name] = _entity_rows(conn, entity.target_table, natural)
        result["quarantine"] = conn.execute(
            "select entity, legacy_id, rule from migration.quarantine "
            "where resolved_at is null order by 1, 2, 3"
        ).fetchall()
    return result


def _foreign_keys(conn: Any, table: str) -> dict[str, tuple[str, str]]:
    """Single-column foreign keys of ``table``: column -> (referenced table, its column)."""
    rows = conn.execute(
        """
        select a.attname, rn.nspname || '.' || rc.relname, ra.attname
        from pg_constraint as c
        join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        join pg_class as rc on rc.oid = c.confrelid
        join pg_namespace as rn on rn.oid = rc.relnamespace
        join pg_attribute as ra on ra.attrelid = c.confrelid and ra.attnum = c.confkey[1]
        where c.contype = 'f' and c.conrelid = %s::regclass and cardinality(c.conkey) = 1
        """,
        (table,),
    ).fetchall()
    return {column: (referenced, key) for column, referenced, key in rows}


def _entity_rows(conn: Any, table: str, natural: dict[str, str]) -> list[tuple[Any, ...]]:
    """The table's rows: uuid foreign keys to a migrated table as that row's natural key."""
    schema, name = table.split(".")
    links = _foreign_keys(conn, table)
    selected: list[sql.Composable] = []
    for column, data_type in conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s "
        "and column_name <> all(%s) order by ordinal_position",
        (schema, name, list(WORK_TIMES)),
    ):
        if data_type != "uuid":
            selected.append(sql.Identifier("t", column))
        elif column in links and links[column][0] in natural:
            referenced, key = links[column]
            selected.append(
                sql.SQL("(select r.{} from {} as r where r.{} = t.{})").format(
                    sql.Identifier(natural[referenced]),
                    qualified(referenced),
                    sql.Identifier(key),
                    sql.Identifier(column),
                )
            )
    query = sql.SQL("select {} from {} as t").format(sql.SQL(", ").join(selected), qualified(table))
    return sorted((tuple(row) for row in conn.execute(query).fetchall()), key=repr)


def kill_load_at_its_checkpoint(
    target_dsn: str, run_id: str, entity: str, load: Callable[[], object]
) -> BaseException | None:
    """Run ``load`` and kill its database session inside the load transaction.

    The checkpoint row is held by another session, so the load blocks on it after everything
    else of its transaction (the upsert included) is done; its backend is then terminated.

    Returns:
        what ``load`` raised (the connection loss), or ``None`` if it did not fail.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            load()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)

    with connect(target_dsn) as blocker:
        blocker.execute(
            "select 1 from migration.checkpoints where run_id = %s and entity = %s for update",
            (run_id, entity),
        )
        worker = threading.Thread(target=run)
        worker.start()
        with connect(target_dsn, autocommit=True) as monitor:
            for _ in range(400):
                row = monitor.execute(
                    "select pid from pg_stat_activity where application_name = %s "
                    "and wait_event_type = 'Lock'",
                    (f"migration:load:{entity}",),
                ).fetchone()
                if row:
                    monitor.execute("select pg_terminate_backend(%s)", (row[0],))
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"the {entity} load never reached its checkpoint write")
        worker.join(30)
        blocker.rollback()
    return errors[0] if errors else None


def status_asset_disagreements(target_dsn: str, metadata_dsn: str) -> list[tuple[str, str, bool]]:
    """Runs whose status and Asset disagree: ``(run_id, status, Asset emitted)``.

    A run is ``validated`` exactly when Airflow recorded its phase's Asset event (read from
    the Airflow metadata database of the ``migrate`` runs).
    """
    with connect(metadata_dsn) as conn:
        emitted = {
            f"{dag_id}__{run_id}"
            for dag_id, run_id in conn.execute(
                "select source_dag_id, source_run_id from asset_event"
            )
        }
    with connect(target_dsn) as conn:
        recorded = conn.execute("select run_id, status from migration.runs order by 1").fetchall()
    return [
        (run_id, status, run_id in emitted)
        for run_id, status in recorded
        if (status == "validated") != (run_id in emitted)
    ]
