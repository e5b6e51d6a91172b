"""The legacy database is never writable from this project: every session it opens there is read-only.

Each path that touches the legacy database (extract, the legacy backup's version check,
snapshot and ``pg_dump``, the local Storage stand-in's manifest, the preflight, every phase's
load with its direct columns, ``verify_target`` and a nightly sync) runs for real against a
legacy database while every psycopg connection to that database is watched: when the code
closes it, the same session is asked ``show transaction_read_only`` and made to attempt a
write, which must fail with SQLSTATE 25006. Each test asserts the exact set of sessions its
operation opened, so a new legacy path shows up here (and must be read-only to pass).
``pg_dump`` is a separate process, so its exact connection string and environment are
replayed through ``psql``.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from include.entities import LEGACY_PHASES, SYNC, get_phase
from include.entities.spec import SourceTable
from migration_ops import backup, extract, local_env, runs
from migration_ops.audit.preflight import run_preflight
from migration_ops.audit.verify import verify_target
from migration_ops.db import connect, connect_legacy
from migration_ops.local_storage import write_expected_objects
from tests.e2e.conftest import run_phase

pytestmark = pytest.mark.e2e

#: What a read-only session answers: (transaction_read_only, SQLSTATE of a write attempt).
READ_ONLY = ("on", "25006")
WRITE = "create table public.read_only_probe (x integer)"
PROBE_ENTITY = dataclasses.replace(
    get_phase(1).entities[0], name="probe", sources=(SourceTable("probe", ("id", "note")),)
)


@pytest.fixture
def legacy(make_db: Callable[[str], str]) -> str:
    """A tiny legacy database: one table to extract, the sandbox's media manifest."""
    dsn = make_db("legacy_ro")
    with connect(dsn) as conn:
        conn.execute("create table probe (id integer primary key, note text)")
        conn.execute("insert into probe values (1, 'a'), (2, 'b'), (3, null)")
        conn.execute("create schema sandbox")
        conn.execute("create table sandbox.media_manifest (file_id integer, relative_path text)")
        conn.execute("insert into sandbox.media_manifest values (7, 'files/7.stl')")
    return dsn


def probe(conn: psycopg.Connection[Any]) -> tuple[str, str | None]:
    """(``transaction_read_only``, SQLSTATE of a write) of the session behind ``conn``."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    row = conn.execute("show transaction_read_only").fetchone()
    assert row is not None
    try:
        conn.execute(WRITE)
        sqlstate = None
    except psycopg.Error as error:
        sqlstate = error.sqlstate
    conn.rollback()
    if sqlstate is None:  # an autocommit session wrote: undo it, the assertion reports it
        conn.execute("drop table if exists public.read_only_probe")
    return str(row[0]), sqlstate


def watch_sessions(legacy: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, Any]]:
    """{application_name: probe result} of every psycopg session opened on ``legacy`` from now.

    Each connection to the legacy database is probed when its owner closes it, i.e. with
    the settings the owner gave it (transaction mode, autocommit, read-only attribute).
    Every connection of the project goes through ``psycopg.connect`` (see the last test).
    """
    seen: dict[str, tuple[str, Any]] = {}
    legacy_db = conninfo_to_dict(legacy)["dbname"]
    real_connect = psycopg.connect

    def watched(conninfo: str = "", **kwargs: Any) -> psycopg.Connection[Any]:
        conn = real_connect(conninfo, **kwargs)
        if conn.info.dbname == legacy_db:
            name = str(conn.info.parameter_status("application_name"))
            real_close = conn.close

            def close() -> None:
                if not conn.closed:
                    seen[name] = probe(conn)
                real_close()

            conn.close = close  # type: ignore[method-assign]
        return conn

    monkeypatch.setattr(psycopg, "connect", watched)
    return seen


@pytest.fixture
def legacy_sessions(legacy: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, Any]]:
    """The sessions the test opens on the small ``legacy`` database (:func:`watch_sessions`)."""
    return watch_sessions(legacy, monkeypatch)


@pytest.fixture
def pg_dump_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    """(``--dbname`` conninfo, environment) of every ``pg_dump`` run that dumps a database."""
    calls: list[tuple[str, dict[str, str]]] = []
    real_run = subprocess.run

    def watched(args: Any, *rest: Any, **kwargs: Any) -> Any:
        if Path(str(args[0])).name == "pg_dump" and "--version" not in args:
            dbname = next(a for a in args if str(a).startswith("--dbname="))
            calls.append((dbname.removeprefix("--dbname="), dict(kwargs.get("env") or {})))
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", watched)
    return calls


def psql_probe(conninfo: str, env: dict[str, str]) -> tuple[str, str | None]:
    """Replay a client tool's connection through ``psql``: read-only answer, write SQLSTATE."""
    result = subprocess.run(
        [
            backup.tool_path("psql"),
            "-X",
            "-A",
            "-t",
            "-c",
            "show transaction_read_only",
            "-c",
            "\\set VERBOSITY verbose",
            "-c",
            WRITE,
            f"--dbname={conninfo}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    read_only = result.stdout.splitlines()[0].strip()
    error = next((line for line in result.stderr.splitlines() if "ERROR:" in line), "")
    return read_only, (error.split("ERROR:", 1)[1].strip().split(":", 1)[0] or None)


@pytest.fixture
def target(make_db: Callable[[str], str]) -> Iterator[str]:
    yield make_db("target_ro")


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_connect_legacy_opens_a_read_only_repeatable_read_session(legacy, autocommit) -> None:
    with connect_legacy(legacy, application_name="migration:test") as conn:
        conn.autocommit = autocommit
        isolation = conn.execute("show transaction_isolation").fetchone()
        assert probe(conn) == READ_ONLY
    assert isolation == ("read committed" if autocommit else "repeatable read",)
    with connect(legacy) as conn:
        assert conn.execute("select to_regclass('public.read_only_probe')").fetchone() == (None,)


def test_a_legacy_session_stays_read_only_when_its_default_is_turned_off(legacy) -> None:
    """Read-only twice over: each transaction is begun READ ONLY, whatever the session default.

    Code running later in the session (a library, a future step) may ``set
    default_transaction_read_only = off``; the next transaction still cannot write.
    """
    with connect_legacy(legacy, application_name="migration:test") as conn:
        conn.execute("set default_transaction_read_only = off")
        conn.commit()
        assert probe(conn) == READ_ONLY


def test_connect_legacy_keeps_the_options_the_dsn_carries(legacy) -> None:
    dsn = make_conninfo(legacy, options="-c statement_timeout=4321")
    with connect_legacy(dsn, application_name="migration:test") as conn:
        assert conn.execute("show statement_timeout").fetchone() == ("4321ms",)
        assert probe(conn) == READ_ONLY


def test_extract_reads_the_legacy_database_read_only(legacy, target, legacy_sessions) -> None:
    runs.apply_schema(target, get_phase(1))
    runs.begin_run(target, get_phase(1), "ro", triggered_by="pytest", params={})
    staged = extract.extract_entities(legacy, target, "ro", [PROBE_ENTITY])
    assert staged.counts == {"probe": {"probe": 3}}
    assert legacy_sessions == {
        "migration:extract:snapshot": READ_ONLY,  # exports the phase's snapshot
        "migration:extract:probe": READ_ONLY,  # imports it and copies the entity's tables
    }


def test_legacy_backup_sessions_and_pg_dump_are_read_only(
    legacy, target, legacy_sessions, pg_dump_calls, tmp_path
) -> None:
    backup_id = backup.take_backup(
        target,
        reason="read-only test",
        triggered_by="pytest",
        database="legacy",
        source_dsn=legacy,
        store=backup.LocalStore(tmp_path),
    )
    assert legacy_sessions == {
        "migration:backup:version": READ_ONLY,
        "migration:backup:snapshot": READ_ONLY,
    }
    assert len(pg_dump_calls) == 1
    assert psql_probe(*pg_dump_calls[0]) == READ_ONLY
    assert backup.get_backup(target, backup_id).row_counts == {"public.probe": 3}


def test_storage_manifest_reads_the_legacy_database_read_only(
    legacy, legacy_sessions, tmp_path
) -> None:
    listing = write_expected_objects(legacy, tmp_path / "expected.txt")
    assert listing.read_text(encoding="utf-8").splitlines()[1:] == ["files/7.stl"]
    assert legacy_sessions == {"migration:storage:manifest": READ_ONLY}


def test_preflight_reads_the_legacy_database_read_only(
    legacy, supabase_db, legacy_sessions
) -> None:
    result = run_preflight(legacy, supabase_db("target_ro"))
    versions = [c for c in result.checks if c.name == "pg_dump vs legacy"]
    assert [c.status for c in versions] == ["ok"]
    assert legacy_sessions == {
        "migration:preflight": READ_ONLY,  # connectivity, drift, volumes, defect profile
        "migration:backup:version": READ_ONLY,  # pg_dump against the legacy server's version
    }


@pytest.fixture(scope="module")
def sandbox_sessions(
    pg_socket: str, sandbox_dsn: str, supabase_storage: Any
) -> dict[str, dict[str, tuple[str, Any]]]:
    """{operation: sessions it opened on the sandbox legacy database} of a whole migration.

    Phases 1-4 (extract, load with its direct columns), ``verify_target`` and one nightly
    sync, into a Supabase-shaped target; each operation watched on its own.
    """
    target = local_env.ensure_supabase_database(pg_socket, "e2e_read_only_target", recreate=True)
    seen: dict[str, dict[str, tuple[str, Any]]] = {}
    for phase in LEGACY_PHASES:
        with pytest.MonkeyPatch.context() as patch:
            sessions = watch_sessions(sandbox_dsn, patch)
            run_phase(sandbox_dsn, target, phase, f"ro-phase{phase.number}")
        seen[f"phase {phase.number}"] = sessions
    with pytest.MonkeyPatch.context() as patch:
        sessions = watch_sessions(sandbox_dsn, patch)
        verify_target(sandbox_dsn, target, run_id="ro-verify", triggered_by="pytest")
    seen["verify_target"] = sessions
    runs.check_gate(target, SYNC)
    with pytest.MonkeyPatch.context() as patch:
        sessions = watch_sessions(sandbox_dsn, patch)
        run_phase(sandbox_dsn, target, SYNC, "ro-sync")
    seen["sync"] = sessions
    return seen


def extract_sessions(entities: Any) -> dict[str, tuple[str, str]]:
    """The sessions of one extract: the snapshot's exporter, one per entity."""
    names = ["snapshot", *(entity.name for entity in entities)]
    return {f"migration:extract:{name}": READ_ONLY for name in names}


@pytest.mark.parametrize("phase", LEGACY_PHASES, ids=lambda p: f"phase{p.number}")
def test_every_phase_extracts_and_loads_read_only(sandbox_sessions, phase) -> None:
    expected = extract_sessions(phase.entities)
    if phase.number == 1:  # profiles: password hashes stream from legacy at load time
        expected["migration:load:profiles"] = READ_ONLY
    assert sandbox_sessions[f"phase {phase.number}"] == expected


def test_the_direct_column_load_session_is_one_of_them(sandbox_sessions) -> None:
    direct = {e.name for p in LEGACY_PHASES for e in p.entities if e.direct_columns}
    assert direct == {"profiles"}
    assert sandbox_sessions["phase 1"]["migration:load:profiles"] == READ_ONLY


def test_verify_target_reads_the_legacy_database_read_only(sandbox_sessions) -> None:
    entities = [e for p in LEGACY_PHASES for e in p.entities]
    assert sandbox_sessions["verify_target"] == extract_sessions(entities)


def test_the_sync_reads_the_legacy_database_read_only(sandbox_sessions) -> None:
    expected = extract_sessions(SYNC.entities)
    expected["migration:load:profiles"] = READ_ONLY
    assert sandbox_sessions["sync"] == expected


def test_raw_psycopg_connections_are_opened_in_db_py_only() -> None:
    """A new legacy path cannot bypass ``connect_legacy`` unnoticed: the engine opens raw
    psycopg connections in ``db.py`` alone (and ``local_env.py``, the embedded server's admin).
    """
    plugins = Path(__file__).resolve().parents[2] / "plugins" / "migration_ops"
    raw = sorted(
        path.name
        for path in plugins.glob("*.py")
        if "psycopg.connect(" in path.read_text(encoding="utf-8")
    )
    assert raw == ["db.py", "local_env.py"]
