"""Row fingerprints used to prove reruns leave tables identical."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from include.entities.spec import PhaseSpec
from migration_ops.db import connect, qualified
from migration_ops.runs import RunContext


def table_fingerprint(dsn: str, table: str) -> tuple[int, str]:
    """(row count, md5 over every full row in a stable order): ids and timestamps included."""
    with connect(dsn) as conn:
        row = conn.execute(
            sql.SQL(
                "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {} as t"
            ).format(qualified(table))
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def public_tables(dsn: str) -> list[str]:
    """Every table of the target's public schema."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "select 'public.' || tablename from pg_tables where schemaname = 'public' order by 1"
        ).fetchall()
    return [r[0] for r in rows]


def auth_functions(dsn: str) -> dict[str, tuple[str, ...]]:
    """Per ``auth`` function: md5 of ``pg_get_functiondef``, owner, ACL and comment.

    Supabase owns these; the project must never replace or alter them (byte-exact).
    """
    with connect(dsn) as conn:
        rows = conn.execute(
            """
            select p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid)),
                   pg_get_userbyid(p.proowner), coalesce(p.proacl::text, ''),
                   coalesce(obj_description(p.oid, 'pg_proc'), '')
            from pg_proc as p where p.pronamespace = 'auth'::regnamespace
            """
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def tables_without_rls(dsn: str) -> list[str]:
    """Public tables whose row level security is off (must stay empty)."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "select relname from pg_class where relnamespace = 'public'::regnamespace "
            "and relkind in ('r', 'p') and not relrowsecurity order by 1"
        ).fetchall()
    return [r[0] for r in rows]


def fingerprints(dsn: str) -> dict[str, tuple[int, str]]:
    """Fingerprint of every public table."""
    return {table: table_fingerprint(dsn, table) for table in public_tables(dsn)}


def assert_rerun_is_a_no_op(
    legacy_dsn: str,
    target_dsn: str,
    phase: PhaseSpec,
    run_id: str,
    tables: Iterable[str] | None = None,
) -> RunContext:
    """Run ``phase`` again and prove it changed nothing; return the second run.

    Every given table (default: all public tables) stays byte-identical, ids and timestamps
    included; the quarantine gains no row; no entity inserted or updated anything.
    """
    from tests.e2e.conftest import run_phase

    watched = list(tables) if tables is not None else public_tables(target_dsn)
    before = {table: table_fingerprint(target_dsn, table) for table in watched}
    with connect(target_dsn) as conn:
        quarantine_before = conn.execute("select count(*) from migration.quarantine").fetchone()
    second = run_phase(legacy_dsn, target_dsn, phase, run_id)
    assert {table: table_fingerprint(target_dsn, table) for table in watched} == before
    with connect(target_dsn) as conn:
        assert (
            conn.execute("select count(*) from migration.quarantine").fetchone()
            == quarantine_before
        )
        changed = conn.execute(
            "select sum(inserted_rows), sum(updated_rows) from migration.checkpoints where run_id = %s",
            (second.run_id,),
        ).fetchone()
    assert changed == (0, 0), f"a rerun of phase {phase.number} wrote rows: {changed}"
    return second
