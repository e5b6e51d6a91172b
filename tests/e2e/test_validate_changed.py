"""Validation of what would change the target (issue 20), on real PostgreSQL and GX.

Phase 1 is loaded from a private copy of the sandbox, then run again: with nothing changed
Great Expectations judges no row; with two offices changed in legacy (one now breaking a
row-level rule) it judges exactly those two and quarantines the broken one; after the suite
changed it judges every row once more. The whole-entity expectations run in SQL each time.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import sql

from include.entities import get_phase
from include.entities.phase1_core import OFFICES
from migration_ops import entity_checks, local_env, validate
from migration_ops.db import connect
from tests.e2e.conftest import copy_of_sandbox, run_phase

pytestmark = pytest.mark.e2e
PHASE_1 = get_phase(1)


def _judged(target: str, run_id: str) -> dict[str, tuple[int, int]]:
    """entity -> (entity rows, rows the row-local expectations judged), first pass."""
    return {e: (rows, judged) for e, (rows, judged, _) in _counts(target, run_id).items()}


def _counts(target: str, run_id: str) -> dict[str, tuple[int, int, int]]:
    """entity -> (entity rows, judged rows, rows whose verdict was carried over)."""
    with connect(target) as conn:
        return {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute(
                "select entity, entity_rows, judged_rows, carried_rows "
                "from migration.validation_results where run_id = %s and pass = 'transformed'",
                (run_id,),
            )
        }


def _scopes(target: str, run_id: str, entity: str) -> dict[str, str]:
    with connect(target) as conn:
        results = conn.execute(
            "select results from migration.validation_results "
            "where run_id = %s and entity = %s and pass = 'transformed'",
            (run_id, entity),
        ).fetchone()
    assert results is not None
    return {r["rule"]: r["scope"] for r in results[0]}


@pytest.fixture(scope="module")
def phase_1(sandbox_dsn: str, pg_socket: str) -> dict[str, Any]:
    legacy = copy_of_sandbox(pg_socket, "e2e_vc_legacy")
    target = local_env.ensure_supabase_database(pg_socket, "e2e_vc_target", recreate=True)
    first = run_phase(legacy, target, PHASE_1, "vc-first")
    return {"legacy": legacy, "target": target, "first": first}


def test_a_first_load_judges_every_row(phase_1: dict[str, Any]) -> None:
    for entity, (rows, judged) in _judged(phase_1["target"], phase_1["first"].run_id).items():
        assert judged == rows, entity


def test_a_rerun_with_nothing_changed_judges_no_row_and_checks_the_entity_in_sql(
    phase_1: dict[str, Any],
) -> None:
    rerun = run_phase(phase_1["legacy"], phase_1["target"], PHASE_1, "vc-unchanged")
    counts = _counts(phase_1["target"], rerun.run_id)
    with connect(phase_1["target"]) as conn:
        held = dict(
            conn.execute(
                "select entity, count(*) from migration.quarantine where resolved_at is null "
                "group by entity"
            ).fetchall()
        )
    assert {e: j for e, (_, j, _) in counts.items()} == {e.name: 0 for e in PHASE_1.entities}
    assert {e: c for e, (_, _, c) in counts.items()} == {
        e.name: held.get(e.name, 0) for e in PHASE_1.entities
    }, "the rows still held back came back unchanged: their verdicts are carried over"
    assert held.get("offices", 0) >= 1, "the sandbox holds an office back"
    scopes = _scopes(phase_1["target"], rerun.run_id, "offices")
    assert scopes["offices.legacy_id_unique"] == "all rows (SQL)"
    assert scopes["offices.every_source_row"] == "all rows (SQL)"
    assert scopes["offices.column_set"] == "all rows (SQL)"
    assert scopes["offices.tax_rate_fraction"] == "changed rows (none)"


def test_a_rerun_judges_exactly_the_changed_rows_and_quarantines_a_broken_one(
    phase_1: dict[str, Any],
) -> None:
    legacy, target = phase_1["legacy"], phase_1["target"]
    with connect(target) as conn:
        changed, broken = [
            r[0]
            for r in conn.execute("select legacy_office_id from public.offices order by 1 limit 2")
        ]
        held_before = conn.execute(
            "select count(*) from migration.quarantine where entity = 'offices' "
            "and resolved_at is null"
        ).fetchone()[0]
    with connect(legacy) as conn:
        conn.execute(
            "update dispatch_office set name = name || ' (moved)' where id = %s", (changed,)
        )
        conn.execute("update dispatch_office set tax_rate = 250 where id = %s", (broken,))
    rerun = run_phase(legacy, target, PHASE_1, "vc-two-changed")
    assert _counts(target, rerun.run_id)["offices"][1:] == (2, held_before)
    with connect(target) as conn:
        held = conn.execute(
            "select legacy_id, rule from migration.quarantine where entity = 'offices' "
            "and last_run_id = %s and resolved_at is null",
            (rerun.run_id,),
        ).fetchall()
        loaded = conn.execute(
            "select updated_rows, quarantined_rows from migration.checkpoints "
            "where run_id = %s and entity = 'offices'",
            (rerun.run_id,),
        ).fetchone()
    assert (broken, "offices.tax_rate_fraction") in held
    assert loaded is not None and loaded[0] == 1


def test_a_held_back_row_fixed_in_legacy_is_judged_again_and_loads(
    phase_1: dict[str, Any],
) -> None:
    legacy, target = phase_1["legacy"], phase_1["target"]
    with connect(target) as conn:
        broken = conn.execute(
            "select legacy_id from migration.quarantine where entity = 'offices' "
            "and rule = 'offices.tax_rate_fraction' and resolved_at is null order by 1 limit 1"
        ).fetchone()
    assert broken is not None
    with connect(legacy) as conn:
        conn.execute("update dispatch_office set tax_rate = 0.07 where id = %s", broken)
    rerun = run_phase(legacy, target, PHASE_1, "vc-fixed")
    assert _counts(target, rerun.run_id)["offices"][1] == 1, "judged again: its content changed"
    with connect(target) as conn:
        loaded = conn.execute(
            "select count(*) from public.offices where legacy_office_id = %s", broken
        ).fetchone()
        open_entry = conn.execute(
            "select count(*) from migration.quarantine where entity = 'offices' "
            "and legacy_id = %s and resolved_at is null",
            broken,
        ).fetchone()
        verdict = conn.execute(
            "select count(*) from migration.row_verdicts where entity = 'offices' "
            "and legacy_id = %s",
            broken,
        ).fetchone()
    assert (loaded, open_entry, verdict) == ((1,), (0,), (0,))


def test_a_changed_suite_judges_every_row_once_more(phase_1: dict[str, Any]) -> None:
    target = phase_1["target"]
    with connect(target) as conn:  # as if the suite file had been edited since
        conn.execute(
            "update migration.validation_results set suite_sha256 = 'an older suite' "
            "where entity = 'offices'"
        )
    rerun = run_phase(phase_1["legacy"], target, PHASE_1, "vc-suite-changed")
    rows, judged = _judged(target, rerun.run_id)["offices"]
    assert judged == rows
    assert _judged(target, rerun.run_id)["profiles"][1] == 0


def test_whole_entity_expectations_in_sql_count_like_gx(supabase_db) -> None:
    target = supabase_db("entity_checks")
    with connect(target) as conn:
        conn.execute("create schema if not exists staging")
        conn.execute(
            "create table staging.t (legacy_office_id int, name text);"
            "insert into staging.t values (1, 'a'), (2, 'b'), (2, 'c'), (3, null), (null, 'd'),"
            " (null, 'e')"
        )
        duplicates = {
            "type": "expect_column_values_to_be_unique",
            "kwargs": {"column": "legacy_office_id"},
        }
        assert entity_checks.evaluate(conn, "staging.t", duplicates) == (
            False,
            {"element_count": 6.0, "unexpected_count": 2.0, "unexpected_percent": 100 * 2 / 6},
        )
        query = {
            "type": "unexpected_rows_expectation",
            "kwargs": {"unexpected_rows_query": "select * from {batch} where name is null"},
        }
        assert entity_checks.evaluate(conn, "staging.t", query)[1]["unexpected_count"] == 1.0
        columns = {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": ["legacy_office_id", "name"], "exact_match": True},
        }
        assert entity_checks.evaluate(conn, "staging.t", columns)[0] is True
        columns["kwargs"]["column_set"] = ["legacy_office_id"]
        assert entity_checks.evaluate(conn, "staging.t", columns)[0] is False
        conn.execute(sql.SQL("drop table staging.t"))


def test_every_suite_expectation_is_classified_and_sql_ones_are_never_row_level() -> None:
    from include.entities import PHASES

    for phase in PHASES:
        for entity in phase.entities:
            for expectation in validate.load_suite(entity)["expectations"]:
                whole = entity_checks.needs_whole_entity(expectation)  # raises if unknown
                if expectation["type"] in entity_checks.SQL_TYPES:
                    assert whole and not expectation["meta"].get("row_level"), (
                        entity.name,
                        expectation["meta"]["rule"],
                    )
    assert OFFICES.suite == "offices.json"


def test_a_target_row_edited_between_validate_and_load_fails_the_proof_then_heals(
    phase_1: dict[str, Any],
) -> None:
    """The load writes what validate found changed (it does not compare every row again): a
    row edited by hand after validate stays as edited, the row proof right after the load
    names it, and the next run, which compares it again, repairs it."""
    from migration_ops import pipeline, runs
    from migration_ops.errors import MigrationError

    legacy, target = phase_1["legacy"], phase_1["target"]
    run = runs.begin_run(target, PHASE_1, "vc-edited", triggered_by="pytest", params={})
    pipeline.extract_step(legacy, target, run, [OFFICES])
    pipeline.transform_step(target, run, OFFICES)
    pipeline.validate_step(target, run, OFFICES, limit=pipeline.QuarantineLimit())
    with connect(target) as conn:
        edited = conn.execute(
            "update public.offices set name = 'edited by hand' where legacy_office_id = "
            "(select min(legacy_office_id) from public.offices) returning legacy_office_id"
        ).fetchone()[0]
    loaded = pipeline.load_step(target, run, OFFICES)
    with pytest.raises(MigrationError, match="1 mismatched, 0 missing, 0 unexpected"):
        pipeline.verify_step(target, run, OFFICES)
    with connect(target) as conn:
        finding = conn.execute(
            "select legacy_id, kind, column_name from migration.row_findings "
            "where run_id = 'vc-edited' and entity = 'offices'"
        ).fetchall()
    runs.mark_failed(target, "vc-edited")
    healed = run_phase(legacy, target, PHASE_1, "vc-healed")
    with connect(target) as conn:
        name, updated = conn.execute(
            "select o.name, c.updated_rows from public.offices as o, migration.checkpoints as c "
            "where o.legacy_office_id = %s and c.run_id = %s and c.entity = 'offices'",
            (edited, healed.run_id),
        ).fetchone()
    assert (loaded["updated_rows"], finding) == (0, [(edited, "mismatch", "name")])
    # the healing run's own row proof passed (run_phase raises otherwise): legacy's name again
    assert (name != "edited by hand", updated) == (True, 1)
