"""The phase 1 Great Expectations suites: well-formed, GX 1.24-valid, and doing their job.

Static checks need no database. The e2e checks build the hand-made edge cases of
``test_transform_sql.py`` and then (a) compare every column a suite names with the real
transformed table, and (b) run the phase through the engine's own steps (transform,
validate with GX, quarantine, load, reconcile) to prove each row-level rule quarantines
exactly the rows it should and every gate passes on clean rows.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from include.entities.phase1_core import OFFICES, ORDER_TYPES, PHASE_1, PROFILES
from migration_ops import pipeline, runs
from migration_ops.db import connect
from migration_ops.validate import QuarantineLimit
from tests.unit.staged_runs import (
    adopt_staging,
    recorded_quarantine,
    run_phase_from_staging,
    staged_quarantine,
)
from tests.unit.suite_helpers import (
    TEXT_COMPARING,
    expectations_of,
    referenced_columns,
)
from tests.unit.test_transform_sql import load_staging, prepare_phase1, transform_all

ENTITIES = list(PHASE_1.entities)


def test_gx_version_is_the_pinned_one() -> None:
    import great_expectations as gx

    assert gx.__version__ == "1.24.1"


# ---------------------------------------------------------------------------------------------
# against the real transformed tables
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def transformed_db(make_db) -> str:
    dsn = make_db("p1suites")
    prepare_phase1(dsn, schema_times=1)
    transform_all(dsn)
    return dsn


def _columns(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        """
        select column_name, data_type, is_nullable, column_default
        from information_schema.columns where table_schema = %s and table_name = %s
        """,
        (schema, table),
    ).fetchall()
    return {r[0]: {"type": r[1], "nullable": r[2] == "YES", "default": r[3]} for r in rows}


@pytest.mark.e2e
def test_every_referenced_column_exists_in_the_transformed_table(transformed_db) -> None:
    with connect(transformed_db) as conn:
        for entity in ENTITIES:
            columns = _columns(conn, "staging", f"{entity.name}__transformed")
            for expectation in expectations_of(entity):
                missing = referenced_columns(expectation) - set(columns)
                assert not missing, (entity.name, expectation["meta"]["rule"], missing)
                if expectation["type"] == "expect_table_columns_to_match_set":
                    assert set(expectation["kwargs"]["column_set"]) == set(columns)
                if TEXT_COMPARING.search(expectation["type"]):
                    column = expectation["kwargs"]["column"]
                    assert columns[column]["type"] != "USER-DEFINED", (
                        f"{entity.name}: {expectation['type']} on enum column {column}"
                    )


@pytest.mark.e2e
def test_every_not_null_target_column_has_a_not_null_expectation(transformed_db) -> None:
    """A NULL for a NOT NULL column is named by a rule before the load, never a DB error."""
    with connect(transformed_db) as conn:
        for entity in ENTITIES:
            staged = _columns(conn, "staging", f"{entity.name}__transformed")
            target = _columns(conn, *entity.target_table.split("."))
            required = {c for c, info in target.items() if not info["nullable"] and c in staged}
            guarded = {
                e["kwargs"]["column"]
                for e in expectations_of(entity)
                if e["type"] == "expect_column_values_to_not_be_null"
            }
            assert required <= guarded, (entity.name, required - guarded)


# ---------------------------------------------------------------------------------------------
# through the engine: GX validation, quarantine, load, reconciliation
# ---------------------------------------------------------------------------------------------
#: (legacy id, rule) the suites must quarantine in the edge-case data, and nothing else.
EXPECTED_QUARANTINE = {
    "offices": {
        (4, "offices.tax_rate_fraction"),  # 150 -> 1.5
        (5, "offices.tax_rate_fraction"),  # negative
        (6, "offices.tax_rate_fraction"),  # exactly 1: ambiguous
        (12, "offices.tax_rate_fraction"),  # 1000 -> 10
        (11, "offices.tax_rate_present"),
    },
    "profiles": {(11, "profiles.username_present")},
    "order_types": {(13, "order_types.name_present")},
}


def _run(dsn: str, run_id: str, *, load: bool) -> runs.RunContext:
    """Phase 1 through the engine on the hand-staged rows (no extract: staging is filled)."""
    runs.apply_schema(dsn, PHASE_1)
    return run_phase_from_staging(dsn, PHASE_1, run_id, load=load)


@pytest.fixture
def engine_db(make_db) -> str:
    dsn = make_db("p1engine")
    runs.apply_schema(dsn, PHASE_1)  # the real 000, 010 and 100
    load_staging(dsn)
    return dsn


@pytest.mark.e2e
def test_suites_quarantine_exactly_the_broken_rows_through_the_engine(engine_db) -> None:
    first = _run(engine_db, "suites-1", load=False)
    assert staged_quarantine(engine_db, ENTITIES) == EXPECTED_QUARANTINE
    # not loaded: the auditors' history is untouched until the load records the decisions
    assert recorded_quarantine(engine_db, first.run_id, ENTITIES) == {
        e.name: set() for e in ENTITIES
    }
    with connect(engine_db) as conn:
        results = conn.execute(
            "select entity, pass, success, results from migration.validation_results "
            "where run_id = %s",
            (first.run_id,),
        ).fetchall()
    # pass 1 fails on the broken rows only; pass 2 (what loads) passes every expectation
    assert {(e, p): s for e, p, s, _ in results} == {
        ("offices", "transformed"): False,
        ("offices", "validated"): True,
        ("profiles", "transformed"): False,
        ("profiles", "validated"): True,
        ("order_types", "transformed"): False,
        ("order_types", "validated"): True,
    }
    for entity, pass_name, _, records in results:
        failed = {r["rule"] for r in records if not r["success"]}
        if pass_name == "transformed":
            assert failed == {rule for _, rule in EXPECTED_QUARANTINE[entity]}, entity
        for record in records:  # the dropped-row gates really ran: they report a row count
            if record["type"] == "unexpected_rows_expectation":
                assert record.get("observed_value") == 0, record


@pytest.mark.e2e
def test_engine_loads_reconciles_and_reruns_without_changes(engine_db) -> None:
    first = _run(engine_db, "suites-1", load=True)
    with connect(engine_db) as conn:
        reconciliation = conn.execute(
            "select entity, source_rows, loaded_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s",
            (first.run_id,),
        ).fetchall()
        linked = conn.execute(
            "select count(*) from public.profiles where patient_doctor_id is not null"
        ).fetchone()[0]
    assert {r[0] for r in reconciliation} == {e.name for e in ENTITIES}
    for entity, source, loaded, quarantined in reconciliation:
        assert source == loaded + quarantined, entity
        assert quarantined == len(EXPECTED_QUARANTINE[entity])
    assert linked == 7  # the post-load link ran inside the profiles load
    assert recorded_quarantine(engine_db, first.run_id, ENTITIES) == EXPECTED_QUARANTINE

    load_staging(engine_db)  # the load dropped the staged rows: stage the same ones again
    second = _run(engine_db, "suites-2", load=True)  # a rerun on the same data changes nothing
    assert recorded_quarantine(engine_db, second.run_id, ENTITIES) == EXPECTED_QUARANTINE
    with connect(engine_db) as conn:
        changed = conn.execute(
            "select sum(inserted_rows), sum(updated_rows) from migration.checkpoints "
            "where run_id = %s",
            (second.run_id,),
        ).fetchone()
    assert changed == (0, 0)


@pytest.mark.e2e
def test_gates_block_fan_out_and_dropped_rows(make_db) -> None:
    from migration_ops.errors import ValidationFailed

    dsn = make_db("p1gates")
    runs.apply_schema(dsn, PHASE_1)
    load_staging(dsn)
    run = runs.begin_run(dsn, PHASE_1, "gates", triggered_by="pytest", params={})
    for entity, mutation, rule in (
        (
            PROFILES,
            "insert into staging.profiles__transformed "
            "select * from staging.profiles__transformed where legacy_user_id = 1",
            "profiles.legacy_id_unique",
        ),
        (
            OFFICES,
            "delete from staging.offices__transformed where legacy_office_id = 2",
            "offices.every_source_row",
        ),
        (
            ORDER_TYPES,
            "update staging.order_types__transformed set code = 'Main!' where legacy_course_id = 1",
            "order_types.code_format",
        ),
    ):
        adopt_staging(dsn, run, entity)
        pipeline.transform_step(dsn, run, entity)
        with connect(dsn) as conn:
            conn.execute(mutation)
        with pytest.raises(ValidationFailed, match=re.escape(rule)):
            pipeline.validate_step(dsn, run, entity, limit=QuarantineLimit(fraction=1.0))


@pytest.mark.e2e
def test_a_blocked_load_leaves_the_quarantine_history_as_it_was(engine_db) -> None:
    from migration_ops.errors import ValidationFailed

    _run(engine_db, "history-1", load=True)
    history = "select * from migration.quarantine order by quarantine_id"
    with connect(engine_db) as conn:
        before = conn.execute(history).fetchall()
    load_staging(engine_db)
    with connect(engine_db) as conn:  # office 4 heals, office 1 breaks: new decisions
        conn.execute("update staging.offices__dispatch_office set tax_rate = 0.0825 where id = 4")
        conn.execute("update staging.offices__dispatch_office set tax_rate = 150 where id = 1")
    run = runs.begin_run(engine_db, PHASE_1, "history-2", triggered_by="pytest", params={})
    adopt_staging(engine_db, run, OFFICES)
    pipeline.transform_step(engine_db, run, OFFICES)
    with pytest.raises(ValidationFailed, match="above the run's limit"):
        pipeline.validate_step(engine_db, run, OFFICES, limit=QuarantineLimit(0.0, 0))
    with connect(engine_db) as conn:
        assert conn.execute(history).fetchall() == before, "nothing resolved, refreshed or added"
    assert staged_quarantine(engine_db, [OFFICES])["offices"] == {
        (1, "offices.tax_rate_fraction"),
        (5, "offices.tax_rate_fraction"),
        (6, "offices.tax_rate_fraction"),
        (11, "offices.tax_rate_present"),
        (12, "offices.tax_rate_fraction"),
    }, "the decisions the blocked run would have recorded stay visible in staging"
