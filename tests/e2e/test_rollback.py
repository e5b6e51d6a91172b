"""Rollback of every phase, both modes, on embedded PostgreSQL: rows, history, gates, reruns.

One target is migrated through every registered phase (a verified backup before each, as
the phase DAG takes it). Then for each phase k, latest first: roll k back, check that every
remaining table hashes as it did after phase k-1 (and phase k's tables are empty), run k
again and check that the target holds what the first run produced. Once with ``delete``,
once with ``restore``. Generic over ``PHASES``: a phase registered later is covered as is.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from psycopg import sql

from include.entities import PHASES, get_phase
from include.entities.spec import EntitySpec, PhaseSpec
from migration_ops import backup, local_env, rollback, runs
from migration_ops.db import connect, qualified, scalar
from migration_ops.errors import GateClosed
from migration_ops.rollback import RollbackRefused
from tests.e2e.conftest import run_phase
from tests.e2e.fingerprint import (
    auth_functions,
    fingerprints,
    public_tables,
    tables_without_rls,
)

pytestmark = pytest.mark.e2e

Fingerprints = dict[str, tuple[int, str]]
HISTORY = ("runs", "checkpoints", "reconciliation", "quarantine", "validation_results", "audit_log")
GENERATED = ("id", "created_at", "updated_at")


# ------------------------------------------------------------------ content fingerprints
def _natural_keys(conn) -> dict[str, list[str]]:
    """Per public table, its single-column unique keys other than the primary key."""
    rows = conn.execute(
        """
        select 'public.' || t.relname, a.attname
        from pg_constraint as c
        join pg_class as t on t.oid = c.conrelid
        join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        where c.contype = 'u' and cardinality(c.conkey) = 1
          and t.relnamespace = 'public'::regnamespace
        order by 1, 2
        """
    ).fetchall()
    keys: dict[str, list[str]] = {}
    for table, column in rows:
        keys.setdefault(table, []).append(column)
    return keys


def _foreign_keys(conn, table: str) -> list[tuple[str, str]]:
    """(column, referenced public table) of the table's single-column foreign keys."""
    return conn.execute(
        """
        select a.attname, 'public.' || r.relname
        from pg_constraint as c
        join pg_class as r on r.oid = c.confrelid
        join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        where c.contype = 'f' and cardinality(c.conkey) = 1 and c.conrelid = to_regclass(%s)
        order by 1
        """,
        (table,),
    ).fetchall()


def content_fingerprint(conn, table: str, keys: dict[str, list[str]]) -> tuple[int, str]:
    """(rows, md5) of a table's content, independent of the ids and timestamps a load generates.

    Generated ids and timestamps are left out; a foreign key stands for the natural key of
    the row it references (its legacy id or code), so two loads of the same legacy rows
    hash the same even though their uuids differ.
    """
    references = []
    dropped = [sql.Literal(c) for c in GENERATED]
    for column, referenced in _foreign_keys(conn, table):
        natural = keys.get(referenced)
        key_json = (
            sql.SQL("jsonb_build_object({})").format(
                sql.SQL(", ").join(
                    sql.SQL("{}, r.{}").format(sql.Literal(k), sql.Identifier(k)) for k in natural
                )
            )
            if natural
            else sql.SQL("to_jsonb(r) - 'id' - 'created_at' - 'updated_at'")
        )
        references.append(
            sql.SQL(
                "{name}, (select {key_json} from {referenced} as r where r.id = t.{column})"
            ).format(
                name=sql.Literal(column),
                key_json=key_json,
                referenced=qualified(referenced),
                column=sql.Identifier(column),
            )
        )
        dropped.append(sql.Literal(column))
    row = sql.SQL("(to_jsonb(t) - {dropped}::text[]) || jsonb_build_object({references})").format(
        dropped=sql.SQL("array[{}]").format(sql.SQL(", ").join(dropped)),
        references=sql.SQL(", ").join(references),
    )
    query = sql.SQL(
        "select count(*), md5(coalesce(string_agg(x, '|' order by x), '')) "
        "from (select ({row})::text as x from {table} as t) as rows"
    ).format(row=row, table=qualified(table))
    result = conn.execute(query).fetchone()
    return int(result[0]), str(result[1])


def contents(dsn: str) -> Fingerprints:
    """Content fingerprint of every public table."""
    with connect(dsn) as conn:
        keys = _natural_keys(conn)
        return {table: content_fingerprint(conn, table, keys) for table in public_tables(dsn)}


def assert_same_state(now: Fingerprints, expected: Fingerprints, seeded: Fingerprints) -> None:
    """Every table of ``expected`` hashes the same; a table it did not have yet is empty or
    holds exactly what the phase's own schema seeds (reference rows no entity loads)."""
    differing = sorted(t for t in expected if now.get(t) != expected[t])
    assert not differing, f"tables differ from the expected state: {differing}"
    extra = sorted(
        t for t in now.keys() - expected.keys() if now[t][0] != 0 and now[t] != seeded.get(t)
    )
    assert not extra, f"tables that did not exist then hold more than their seed rows: {extra}"


# ------------------------------------------------------------------ the migrated target
@dataclass
class Migrated:
    """A target migrated through every phase, with the state after each phase."""

    target: str
    legacy: str
    auth: dict[str, tuple[str, ...]] = field(default_factory=dict)
    after: dict[int, Fingerprints] = field(default_factory=dict)
    seeded: dict[int, Fingerprints] = field(default_factory=dict)
    content_seeded: dict[int, Fingerprints] = field(default_factory=dict)
    content_after: dict[int, Fingerprints] = field(default_factory=dict)
    runs: itertools.count = field(default_factory=itertools.count)

    def run(self, phase: PhaseSpec) -> None:
        """One phase run as the phase DAG does it: verified backup first, then the phase."""
        backup.backup_and_verify(
            self.target,
            reason=f"before phase {phase.number}",
            phase=phase.number,
            triggered_by="pytest",
        )
        run_phase(
            self.legacy, self.target, phase, f"rollback-test-phase{phase.number}-{next(self.runs)}"
        )

    def seeds_from(self, k: int, *, content: bool = False) -> Fingerprints:
        """Tables first created by phase k or a later one, as their schema alone left them."""
        seeded = self.content_seeded if content else self.seeded
        return {
            table: fp
            for phase in PHASES
            if phase.number >= k
            for table, fp in seeded[phase.number].items()
            if table not in self.after[phase.number - 1]
        }

    def history(self) -> dict[str, int]:
        with connect(self.target) as conn:
            return {
                t: int(
                    scalar(
                        conn,
                        sql.SQL("select count(*) from {}").format(sql.Identifier("migration", t)),
                    )
                )
                for t in HISTORY
            }

    def bring_to(self, k: int) -> None:
        """Phases 1..k validated (later phases may have rows): where each test starts."""
        for phase in PHASES:
            if (
                phase.number <= k
                and runs.latest_run_status(self.target, phase.number) != "validated"
            ):
                self.run(phase)

    def later_rows(self, k: int) -> int:
        """Rows that phases after k still hold."""
        plan = rollback.roll_back(
            self.target, k, mode="delete", cascade=True, actor="pytest", dry_run=True
        )
        own = {e.name for e in get_phase(k).entities}
        return sum(n for entity, n in plan["rows"].items() if entity not in own)


@pytest.fixture(scope="module")
def migrated(request, sandbox_dsn, pg_socket, tmp_path_factory) -> Migrated:
    try:  # phases that copy files to Storage need the local Storage server, where there is one
        request.getfixturevalue("supabase_storage")
    except pytest.FixtureLookupError:
        pass
    mp = pytest.MonkeyPatch()
    mp.setenv("MIGRATION_BACKUP_DIR", str(tmp_path_factory.mktemp("backups")))
    target = local_env.ensure_supabase_database(pg_socket, "e2e_rollback_target", recreate=True)
    state = Migrated(target, sandbox_dsn, auth_functions(target))
    state.after[0], state.content_after[0] = fingerprints(target), contents(target)
    for phase in PHASES:
        # What the phase's schema alone creates (begin applies it before any entity loads).
        runs.apply_schema(target, phase)
        state.seeded[phase.number] = fingerprints(target)
        state.content_seeded[phase.number] = contents(target)
        state.run(phase)
        state.after[phase.number] = fingerprints(target)
        state.content_after[phase.number] = contents(target)
    yield state
    mp.undo()


def _next_phase_gate(target: str, k: int) -> None:
    runs.check_gate(target, PhaseSpec(number=k + 1, name="next", title="next", entities=()))


# ------------------------------------------------------------------ delete, then restore
def _rolled_back(migrated: Migrated, k: int, history: dict[str, int], action: str) -> dict:
    """Checks shared by both modes; returns the audit log's record of the rollback."""
    assert_same_state(fingerprints(migrated.target), migrated.after[k - 1], migrated.seeds_from(k))
    assert runs.latest_run_status(migrated.target, k) == "rolled_back"
    with pytest.raises(GateClosed, match="rolled_back"):
        _next_phase_gate(migrated.target, k)
    now = migrated.history()
    assert all(now[t] >= history[t] for t in HISTORY), (history, now)
    with connect(migrated.target) as conn:
        logged = conn.execute(
            "select params from migration.audit_log where action = %s and phase = %s "
            "order by audit_id desc limit 1",
            (action, k),
        ).fetchone()
    assert logged is not None
    return logged[0]


@pytest.mark.parametrize(
    "k", sorted((p.number for p in PHASES), reverse=True), ids=lambda k: f"phase{k}"
)
def test_rollback_restores_the_state_before_the_phase_and_a_rerun_converges(
    migrated: Migrated, k: int
) -> None:
    """Latest phase first: for k below the latest, phase k+1 (rerun by the previous case) still
    has rows, so a plain rollback is refused and a cascading one removes both."""
    migrated.bring_to(k)
    later_rows = migrated.later_rows(k) > 0
    assert later_rows == (k < PHASES[-1].number), "the previous case reran phase k+1"
    if later_rows:
        before = fingerprints(migrated.target)
        with pytest.raises(
            RollbackRefused, match=rf"later phases still have rows: phase {k + 1} \("
        ):
            rollback.roll_back(migrated.target, k, mode="delete", actor="pytest", confirm=str(k))
        assert fingerprints(migrated.target) == before, "a refused rollback changes nothing"

    # delete
    history = migrated.history()
    result = rollback.roll_back(
        migrated.target,
        k,
        mode="delete",
        cascade=later_rows,
        actor="pytest",
        note="test",
        confirm=str(k),
    )
    logged = _rolled_back(migrated, k, history, "rollback")
    assert logged["deleted"] == result["deleted"] and sum(result["deleted"].values()) > 0
    assert result["phases"] == sorted((p.number for p in PHASES if p.number >= k), reverse=True)
    migrated.run(get_phase(k))
    assert_same_state(
        contents(migrated.target),
        migrated.content_after[k],
        migrated.seeds_from(k + 1, content=True),
    )
    assert runs.latest_run_status(migrated.target, k) == "validated"

    # restore (the restore point is the backup the rerun above took before it started)
    history = migrated.history()
    result = rollback.roll_back(migrated.target, k, mode="restore", actor="pytest", confirm=str(k))
    logged = _rolled_back(migrated, k, history, "restore")
    assert logged["backup_id"] == result["backup_id"] > 0
    assert tables_without_rls(migrated.target) == [], "RLS stays on for every restored table"
    assert auth_functions(migrated.target) == migrated.auth, "Supabase's auth helpers untouched"
    migrated.run(get_phase(k))
    assert_same_state(
        contents(migrated.target),
        migrated.content_after[k],
        migrated.seeds_from(k + 1, content=True),
    )


# ------------------------------------------------------------------ refusals
def test_refuses_wrong_confirmation_unknown_phase_and_mode(migrated: Migrated) -> None:
    with pytest.raises(RollbackRefused, match="confirm must be the phase number"):
        rollback.roll_back(migrated.target, 1, mode="delete", actor="pytest", confirm="yes")
    with pytest.raises(RollbackRefused, match="does not exist"):
        rollback.roll_back(migrated.target, 99, mode="delete", actor="pytest")
    with pytest.raises(RollbackRefused, match="mode must be one of"):
        rollback.roll_back(migrated.target, 1, mode="truncate", actor="pytest")


def test_restore_refuses_when_an_earlier_phase_ran_after_the_backup(migrated: Migrated) -> None:
    """Restoring would silently undo that earlier run: only ``delete`` is safe then."""
    migrated.bring_to(1)
    with connect(migrated.target) as conn:
        conn.execute(
            "insert into migration.runs (run_id, phase, dag_id, status, started_at) "
            "values ('rollback-test-earlier', 0, 'probe', 'validated', now())"
        )
    try:
        with pytest.raises(RollbackRefused, match=r"phases \[0\] ran after backup"):
            rollback.roll_back(migrated.target, 1, mode="restore", actor="pytest")
    finally:
        with connect(migrated.target) as conn:
            conn.execute(
                "update migration.runs set status = 'rolled_back' where run_id = 'rollback-test-earlier'"
            )


def test_refuses_while_a_run_is_in_progress(migrated: Migrated) -> None:
    migrated.bring_to(1)
    with connect(migrated.target) as conn:
        conn.execute(
            "insert into migration.runs (run_id, phase, dag_id, status, started_at) "
            "values ('rollback-test-running', 1, 'probe', 'running', '2000-01-01')"
        )
    try:
        with pytest.raises(RollbackRefused, match="runs in progress"):
            rollback.roll_back(migrated.target, 1, mode="delete", actor="pytest")
    finally:
        with connect(migrated.target) as conn:
            conn.execute(
                "update migration.runs set status = 'rolled_back' where run_id = 'rollback-test-running'"
            )


def test_refuses_a_later_phase_with_rows_unless_cascading(migrated: Migrated, monkeypatch) -> None:
    """A stand-in phase registered after the last real one still has rows (also with one phase)."""
    migrated.bring_to(1)
    last = PHASES[-1]
    child = EntitySpec(
        name="rollback_probe",
        phase=last.number + 1,
        description="stand-in later phase",
        sources=(),
        transform_sql="",
        suite="",
        target_table="public.rollback_probe",
        key="legacy_probe_id",
    )
    later = PhaseSpec(number=last.number + 1, name="probe", title="probe", entities=(child,))
    monkeypatch.setattr(rollback, "PHASES", (*PHASES, later))
    with connect(migrated.target) as conn:
        conn.execute(
            "create table public.rollback_probe (id bigint generated always as identity primary key, "
            "legacy_probe_id integer unique)"
        )
        conn.execute(
            "insert into public.rollback_probe (legacy_probe_id) select generate_series(1, 3)"
        )
    try:
        before = fingerprints(migrated.target)
        with pytest.raises(
            RollbackRefused, match=rf"later phases still have rows: phase {later.number} \(3 rows\)"
        ):
            rollback.roll_back(migrated.target, 1, mode="delete", actor="pytest")
        assert fingerprints(migrated.target) == before, "a refused rollback changes nothing"

        result = rollback.roll_back(migrated.target, 1, mode="delete", cascade=True, actor="pytest")
        assert result["phases"] == [later.number, *sorted((p.number for p in PHASES), reverse=True)]
        assert result["deleted"]["rollback_probe"] == 3
        assert list(result["deleted"])[0] == "rollback_probe", "later phases first"
        assert_same_state(fingerprints(migrated.target), migrated.after[0], migrated.seeds_from(1))
    finally:
        with connect(migrated.target) as conn:
            conn.execute("drop table if exists public.rollback_probe")


# ------------------------------------------------------------------ through Airflow
@pytest.mark.airflow
def test_rollback_dag_runs_through_airflow(migrated: Migrated, pg_socket, tmp_path) -> None:
    """`airflow dags test rollback_phase` with typed params: plan, verified backup, restore."""
    migrated.bring_to(1)
    metadata = local_env.ensure_database(pg_socket, "e2e_rollback_airflow", recreate=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        **local_env.environment(pg_socket),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
            "postgresql://", "postgresql+psycopg://"
        ),
        "AIRFLOW_CONN_LEGACY_DB": local_env.airflow_conn_uri(pg_socket, "e2e_legacy"),
        "AIRFLOW_CONN_SUPABASE_DB": local_env.airflow_conn_uri(
            pg_socket, "e2e_rollback_target", login=local_env.SUPABASE_ROLE
        ),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    conf = '{"phase": 1, "mode": "restore", "confirm": "1", "note": "airflow test"}'
    for command in (["db", "migrate"], ["dags", "test", "rollback_phase", "-c", conf]):
        result = subprocess.run(
            [airflow, *command], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert runs.latest_run_status(migrated.target, 1) == "rolled_back"
    with connect(migrated.target) as conn:
        safety = conn.execute(
            "select status from migration.backups where reason = 'before rollback of phase 1'"
        ).fetchall()
        restored = conn.execute(
            "select params ->> 'note' from migration.audit_log where action = 'restore' "
            "order by audit_id desc limit 1"
        ).fetchone()
    assert safety == [("verified",)], "the rollback DAG takes a verified backup first"
    assert restored == ("airflow test",)
    assert_same_state(fingerprints(migrated.target), migrated.after[0], migrated.seeds_from(1))
