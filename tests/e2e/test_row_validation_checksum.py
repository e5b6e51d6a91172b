"""Checksum first, drill down on a difference: ``row_validation.compare`` on a 100k-row entity.

An unchanged target is settled by the two fingerprints (method ``checksum``, no temporary
table); every kind of difference, including those that keep the row count or the multiset of
a column's values, falls back to the row-by-row comparison and is named by id and column.
Each test corrupts inside a transaction it rolls back, so the tests share one database.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from include.entities.spec import EntitySpec
from migration_ops import local_env
from migration_ops.audit import row_validation
from migration_ops.audit.row_validation import CHECKSUM, ROW_BY_ROW, RowValidation
from migration_ops.db import run_sql_file

pytestmark = pytest.mark.e2e
ROWS = 100_000
RUN = "rv-checksum"
ENTITY = EntitySpec(
    name="rv_big",
    phase=4,
    description="synthetic entity for the checksum path",
    sources=(),
    transform_sql="",
    suite="",
    target_table="public.rv_big",
    key="legacy_id",
)
#: Staged (legacy through the transform) and target share the mapped columns; the staged
#: ``amount`` is a plain numeric cast to the target's numeric(12,2), ``_helper`` never loads.
ROWS_SQL = f"""
    select i as legacy_id, 'name ' || (i % 500) as name, (i % 1000) / 4.0 as amount,
        date '2020-01-01' + i % 365 as due, array['t' || i % 7] as tags,
        case when i % 10 <> 0 then 'note ' || i end as note
    from generate_series(1, {ROWS}) as i
"""


@pytest.fixture(scope="module")
def dsn(pg_socket: str) -> str:
    """A Supabase-shaped database with the migration schema, the staged rows and an identical
    target (reached as the non-superuser role, like every target)."""
    target = local_env.ensure_supabase_database(pg_socket, "e2e_rv_checksum", recreate=True)
    with psycopg.connect(target) as conn:
        run_sql_file(conn, "target/010_migration_schema.sql")
        run_sql_file(conn, "target/050_row_validation.sql")
        conn.execute(
            """
            create table public.rv_big (
                id bigint generated always as identity primary key,
                legacy_id integer unique, name text not null, amount numeric(12, 2),
                due date, tags text[], note text
            )
            """
        )
        conn.execute(f"create table staging.rv_big__transformed as {ROWS_SQL}")
        conn.execute("alter table staging.rv_big__transformed add column _helper int default 1")
        conn.execute("create table staging.rv_big__validated as table staging.rv_big__transformed")
        conn.execute(
            "insert into public.rv_big (legacy_id, name, amount, due, tags, note) "
            "select legacy_id, name, amount, due, tags, note from staging.rv_big__validated"
        )
    return target


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    """A transaction on the shared database, rolled back after the test."""
    with psycopg.connect(dsn) as connection:
        try:
            yield connection
        finally:
            connection.rollback()


def _compare(conn: psycopg.Connection) -> tuple[RowValidation, set[tuple[int, str, str]]]:
    outcome = row_validation.compare(
        conn, ENTITY, RUN, legacy_table=ENTITY.staging_table("validated")
    )
    findings = conn.execute(
        "select legacy_id, kind, column_name from migration.row_findings where run_id = %s",
        (RUN,),
    ).fetchall()
    return outcome, {(int(i), str(k), str(c)) for i, k, c in findings}


def test_an_unchanged_target_is_proven_by_the_checksums_alone(conn) -> None:
    conn.execute(
        "insert into migration.row_findings (run_id, entity, legacy_id, kind) "
        "values (%s, 'rv_big', 1, 'missing')",
        (RUN,),
    )
    outcome, findings = _compare(conn)
    assert outcome == RowValidation(ROWS, ROWS, 0, 0, 0, CHECKSUM)
    assert findings == set(), "an earlier run's findings are replaced"
    temporary = conn.execute("select count(*) from pg_class where relpersistence = 't'").fetchone()
    assert temporary == (0,), "no hash table built"


def test_one_changed_value_in_one_row_is_named_by_id_and_column(conn) -> None:
    conn.execute("update public.rv_big set amount = amount + 0.01 where legacy_id = 54321")
    outcome, findings = _compare(conn)
    assert outcome == RowValidation(ROWS, ROWS - 1, 1, 0, 0, ROW_BY_ROW)
    assert findings == {(54321, "mismatch", "amount")}


def test_values_swapped_between_two_rows_are_found(conn) -> None:
    """Same count, same multiset of each column's values: only the rows differ."""
    conn.execute(
        """
        update public.rv_big as t set name = s.name
        from public.rv_big as s
        where (t.legacy_id, s.legacy_id) in ((1001, 1002), (1002, 1001))
        """
    )
    outcome, findings = _compare(conn)
    assert outcome == RowValidation(ROWS, ROWS - 2, 2, 0, 0, ROW_BY_ROW)
    assert findings == {(1001, "mismatch", "name"), (1002, "mismatch", "name")}


def test_a_stray_row_in_place_of_a_missing_one_is_found(conn) -> None:
    """The count is unchanged: only the fingerprint tells."""
    conn.execute("delete from public.rv_big where legacy_id = 777")
    conn.execute(
        "insert into public.rv_big (legacy_id, name, amount, due, tags, note) "
        "select 990000001, name, amount, due, tags, note from public.rv_big where legacy_id = 778"
    )
    outcome, findings = _compare(conn)
    assert outcome == RowValidation(ROWS, ROWS - 1, 0, 1, 1, ROW_BY_ROW)
    assert findings == {(777, "missing", ""), (990000001, "unexpected", "")}


def test_a_target_row_outside_the_compared_rows_but_in_the_universe_falls_back(conn) -> None:
    """A row held in quarantine whose older version is in the target: not a finding."""
    conn.execute("delete from staging.rv_big__validated where legacy_id = 5")
    outcome, findings = _compare(conn)
    assert outcome == RowValidation(ROWS - 1, ROWS - 1, 0, 0, 0, ROW_BY_ROW)
    assert findings == set()


def test_without_a_unique_target_key_duplicates_cannot_cancel_out(conn) -> None:
    """Row 10 twice on both sides, but a changed version in the target: equal counts and XORs.

    Each pair cancels in its side's XOR, so the fingerprints agree although row 10 differs.
    Only the target's unique key makes equal fingerprints a proof: without one the comparison
    goes row by row and names the column.
    """
    conn.execute("alter table public.rv_big drop constraint rv_big_legacy_id_key")
    conn.execute(
        "insert into staging.rv_big__validated select * from staging.rv_big__validated "
        "where legacy_id = 10"
    )
    conn.execute("update public.rv_big set name = 'changed' where legacy_id = 10")
    conn.execute(
        "insert into public.rv_big (legacy_id, name, amount, due, tags, note) "
        "select legacy_id, name, amount, due, tags, note from public.rv_big where legacy_id = 10"
    )
    outcome, findings = _compare(conn)
    assert (outcome.method, outcome.compared_rows, outcome.ok) == (ROW_BY_ROW, ROWS + 1, False)
    assert findings == {(10, "mismatch", "name")}
