"""The phase 2 Great Expectations suites: well-formed, GX 1.24-valid, and doing their job.

Static checks need no database. The e2e checks build the hand-made edge cases of
``test_phase2_transform_sql.py`` and run the phase through the engine's own steps
(transform, validate with GX, quarantine, load with the post-load SQL, reconcile) to prove
each row-level rule quarantines exactly the rows it should and every gate holds.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from include.entities import get_phase
from include.entities.phase2_relationships import FILES, OFFICE_OWNERS, ORDERS
from migration_ops import pipeline, runs
from migration_ops.db import connect
from migration_ops.errors import ValidationFailed
from migration_ops.validate import QuarantineLimit
from tests.unit.staged_runs import (
    adopt_staging,
    recorded_quarantine,
    run_phase_from_staging,
)
from tests.unit.suite_helpers import TEXT_COMPARING, expectations_of, referenced_columns
from tests.unit.test_phase2_transform_sql import EXPECTED_QUARANTINE, prepare, stage_rows

PHASE_2 = get_phase(2)
ENTITIES = list(PHASE_2.entities)
RULE = re.compile(r"^[a-z_]+\.[a-z][a-z0-9_]*$")


def test_every_expected_quarantine_rule_is_a_row_level_rule_of_its_suite() -> None:
    for entity in ENTITIES:
        row_level = {
            e["meta"]["rule"] for e in expectations_of(entity) if e["meta"].get("row_level")
        }
        assert {rule for _, rule in EXPECTED_QUARANTINE[entity.name]} <= row_level, entity.name


# ---------------------------------------------------------------------------------------------
# against the real transformed tables and through the engine
# ---------------------------------------------------------------------------------------------
def _columns(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "select column_name, data_type, is_nullable, column_default "
        "from information_schema.columns where table_schema = %s and table_name = %s",
        (schema, table),
    ).fetchall()
    return {r[0]: {"type": r[1], "nullable": r[2] == "YES", "default": r[3]} for r in rows}


def _run(dsn: str, run_id: str, *, load: bool) -> runs.RunContext:
    """Phase 2 through the engine on the hand-staged rows (no extract: staging is filled)."""
    return run_phase_from_staging(dsn, PHASE_2, run_id, load=load)


@pytest.fixture
def engine_db(make_db) -> str:
    dsn = make_db("p2engine")
    prepare(dsn, schema_times=1)
    return dsn


@pytest.mark.e2e
def test_suites_name_real_columns_and_guard_every_required_one(engine_db) -> None:
    _run(engine_db, "columns", load=False)  # staging is dropped once loaded
    with connect(engine_db) as conn:
        for entity in ENTITIES:
            staged = _columns(conn, "staging", f"{entity.name}__transformed")
            target = _columns(conn, *entity.target_table.split("."))
            for expectation in expectations_of(entity):
                assert not referenced_columns(expectation) - set(staged), expectation["meta"]
                if expectation["type"] == "expect_table_columns_to_match_set":
                    assert set(expectation["kwargs"]["column_set"]) == set(staged)
                if TEXT_COMPARING.search(expectation["type"]):
                    assert staged[expectation["kwargs"]["column"]]["type"] != "USER-DEFINED"
            required = {c for c, info in target.items() if not info["nullable"] and c in staged}
            guarded = {
                e["kwargs"]["column"]
                for e in expectations_of(entity)
                if e["type"] == "expect_column_values_to_not_be_null"
            }
            assert required <= guarded, (entity.name, required - guarded)


@pytest.mark.e2e
def test_suites_quarantine_exactly_the_broken_rows_and_the_load_balances(engine_db) -> None:
    first = _run(engine_db, "p2-suites-1", load=True)
    assert recorded_quarantine(engine_db, first.run_id, ENTITIES) == EXPECTED_QUARANTINE
    with connect(engine_db) as conn:
        results = conn.execute(
            "select entity, pass, success, results from migration.validation_results "
            "where run_id = %s",
            (first.run_id,),
        ).fetchall()
        reconciliation = conn.execute(
            "select entity, source_rows, loaded_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s",
            (first.run_id,),
        ).fetchall()
        links = conn.execute(
            "select legacy_link, is_owner, is_primary from public.doctor_offices order by 1"
        ).fetchall()
    for entity, pass_name, success, records in results:
        failed = {r["rule"] for r in records if not r["success"]}
        expected = {rule for _, rule in EXPECTED_QUARANTINE[entity]}
        assert failed == (expected if pass_name == "transformed" else set()), (entity, pass_name)
        assert success == (pass_name == "validated" or not expected)
    for entity, source, loaded, quarantined in reconciliation:
        assert source == loaded + quarantined, entity
        assert quarantined == len({i for i, _ in EXPECTED_QUARANTINE[entity]}), entity
    # doctor 10: the owned office 1 is primary over office 2; doctor 11 owns office 2
    assert links == [("1:10", True, True), ("2:10", False, False), ("2:11", True, True)]

    stage_rows(engine_db)  # the load dropped the staged rows: stage the same ones again
    second = _run(engine_db, "p2-suites-2", load=True)
    assert recorded_quarantine(engine_db, second.run_id, ENTITIES) == EXPECTED_QUARANTINE
    with connect(engine_db) as conn:
        changed = conn.execute(
            "select sum(inserted_rows), sum(updated_rows) from migration.checkpoints "
            "where run_id = %s",
            (second.run_id,),
        ).fetchone()
    assert changed == (0, 0), "a rerun on the same data changes nothing"


@pytest.mark.e2e
def test_an_office_changing_owner_moves_the_mark_and_the_primary(engine_db) -> None:
    _run(engine_db, "owner-1", load=True)
    stage_rows(engine_db)
    with connect(engine_db) as conn:  # office 1 now belongs to doctor 11, office 2 to doctor 10
        conn.execute(
            "update staging.office_owners__dispatch_office set doctor_id = 11 where id = 1"
        )
        conn.execute(
            "update staging.office_owners__dispatch_office set doctor_id = 10 where id = 2"
        )
    run = runs.begin_run(engine_db, PHASE_2, "owner-2", triggered_by="pytest", params={})
    adopt_staging(engine_db, run, OFFICE_OWNERS)
    pipeline.transform_step(engine_db, run, OFFICE_OWNERS)
    pipeline.validate_step(engine_db, run, OFFICE_OWNERS, limit=QuarantineLimit(fraction=1.0))
    pipeline.load_step(engine_db, run, OFFICE_OWNERS)
    with connect(engine_db) as conn:
        links = conn.execute(
            "select legacy_link, legacy_office_doctor_id, legacy_owner_office_id, is_primary "
            "from public.doctor_offices order by 1"
        ).fetchall()
    # 1:10 keeps its m2m row and loses the mark; the ownership-only 2:11 is gone (no source
    # left); 2:10 (m2m) becomes office 2's ownership; 1:11 is office 1's new ownership link.
    assert links == [
        ("1:10", 1, None, False),
        ("1:11", None, 1, True),
        ("2:10", 2, 2, True),
    ]


@pytest.mark.e2e
def test_gates_block_fan_out_and_dropped_rows(engine_db) -> None:
    run = runs.begin_run(engine_db, PHASE_2, "gates", triggered_by="pytest", params={})
    for entity, mutation, rule in (
        (
            ORDERS,
            "insert into staging.orders__transformed "
            "select * from staging.orders__transformed where legacy_instruction_id = 500",
            "orders.legacy_id_unique",
        ),
        (
            FILES,
            "delete from staging.files__transformed where legacy_file_id = 2",
            "files.every_source_row",
        ),
        (
            FILES,
            "update staging.files__transformed set _object_key = 'a b' where legacy_file_id = 2",
            "files.object_key_format",
        ),
    ):
        adopt_staging(engine_db, run, entity)
        pipeline.transform_step(engine_db, run, entity)
        with connect(engine_db) as conn:
            conn.execute(mutation)
        with pytest.raises(ValidationFailed, match=re.escape(rule)):
            pipeline.validate_step(engine_db, run, entity, limit=QuarantineLimit(fraction=1.0))
