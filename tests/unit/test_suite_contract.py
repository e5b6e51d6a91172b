"""The contract every entity's Great Expectations suite keeps, over every registered phase.

Static checks, no database: a new entity's suite is held to them the day it is registered.
Phase-specific tests (``test_suites.py``, ``test_phase2_suites.py``, the phase 3/4 transform
tests) prove against real transformed tables that the rules quarantine the right rows.
"""

from __future__ import annotations

import pytest

from include.entities import PHASES
from include.entities.spec import EntitySpec
from tests.unit.suite_helpers import RULE, expectations_of, gx_class, suite_of

ENTITIES = [entity for phase in PHASES for entity in phase.entities]


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_suite_is_well_formed(entity: EntitySpec) -> None:
    suite = suite_of(entity)
    assert suite["name"] == entity.name
    assert suite["expectations"]
    rules = [e["meta"]["rule"] for e in suite["expectations"]]
    assert len(rules) == len(set(rules)), "one rule name per expectation"
    for expectation in suite["expectations"]:
        assert set(expectation) <= {"type", "kwargs", "meta"}
        meta = expectation["meta"]
        assert RULE.fullmatch(meta["rule"]) and meta["rule"].startswith(f"{entity.name}.")
        assert isinstance(meta["why"], str) and len(meta["why"]) > 20
        assert meta.get("row_level", False) in (True, False)


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_every_expectation_exists_in_gx_and_the_suite_loads(entity: EntitySpec) -> None:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name=entity.name)
    for expectation in expectations_of(entity):
        domain = ExpectationConfiguration(**expectation).to_domain_obj()  # pydantic validation
        assert type(domain) is gx_class(expectation["type"])
        suite.add_expectation(domain)
    assert len(suite.expectations) == len(expectations_of(entity))


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_row_level_rules_flag_every_row_and_gates_tolerate_nothing(entity: EntitySpec) -> None:
    from great_expectations.expectations.expectation import ColumnMapExpectation

    for expectation in expectations_of(entity):
        if expectation["meta"].get("row_level"):
            assert issubclass(gx_class(expectation["type"]), ColumnMapExpectation)
            assert "mostly" not in expectation["kwargs"], "a quarantine rule must flag every row"
        elif "mostly" in expectation["kwargs"]:
            # report-only expectations (e.g. cycle edges counted) never block the load
            assert expectation["meta"]["rule"].endswith("_reported")


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_key_and_dropped_rows_are_guarded_by_gates(entity: EntitySpec) -> None:
    expectations = expectations_of(entity)
    gates = {
        (e["type"], e["kwargs"].get("column"))
        for e in expectations
        if not e["meta"].get("row_level")
    }
    for column in {entity.key, entity.conflict_key}:
        assert ("expect_column_values_to_be_unique", column) in gates, "fan-out guard"
        assert ("expect_column_values_to_not_be_null", column) in gates
    assert ("expect_table_columns_to_match_set", None) in gates
    dropped = [e for e in expectations if e["meta"]["rule"] == f"{entity.name}.every_source_row"]
    assert len(dropped) == 1, "the dropped-row gate"
    query = dropped[0]["kwargs"]["unexpected_rows_query"]
    # GX renders {batch} as "(select ...) AS subselect" unless the query has a JOIN; an alias
    # after it would be a syntax error that GX reports as a plain failure.
    assert "left join {batch} as t" in query
    assert f"staging.{entity.name}__{entity.primary_source.table}" in query
    assert f"staging.{entity.name}__quarantine as q" in query, "rows this run holds back"


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_set_membership_helpers_are_also_guarded_against_nulls(entity: EntitySpec) -> None:
    """A NULL is never "in" or "not in" a set: each such case column needs both gates."""
    expectations = expectations_of(entity)
    helpers = {
        e["kwargs"]["column"]
        for e in expectations
        if e["type"] == "expect_column_values_to_not_be_in_set"
    }
    for column in helpers:
        kinds = {e["type"] for e in expectations if e["kwargs"].get("column") == column}
        assert {
            "expect_column_values_to_not_be_null",
            "expect_column_values_to_be_in_set",
        } <= kinds, column


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_only_primary_tables_use_cursors(entity: EntitySpec) -> None:
    """A cursor (updated_at, id high-water mark) cannot see a deleted row; deletes of a primary
    row are found by the id anti-join, but a child table's delete must re-derive its entity row,
    which only the content comparison (hashes with the rows' primary ids) sees."""
    for table in entity.sources[1:]:
        assert table.change.kind in ("content", "full", "referenced"), (entity.name, table.table)
    for table in entity.sources:
        if table.change.kind == "updated_at":
            assert table.change.cursor_column, (entity.name, table.table)
        if table.change.kind not in ("full", "referenced"):
            assert table.primary_columns, (entity.name, table.table, "names no entity rows")


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_referenced_id_lists_name_a_column_of_the_primary_table(entity: EntitySpec) -> None:
    """A ``referenced`` id list is staged for the ids the staged primary rows point at: the
    column must exist there, and the primary table must be staged before it (it is first)."""
    for table in entity.sources:
        if table.change.kind == "referenced":
            assert table is not entity.primary_source, (entity.name, table.table)
            assert table.change.referenced_by in entity.primary_source.columns, (
                entity.name,
                table.table,
            )


def test_the_messages_generic_relation_targets_are_referenced_id_lists() -> None:
    """The five generic-relation id lists of messages are staged by reference (by target_id)."""
    from include.entities.phase3_communication import MESSAGES

    referenced = {
        t.table: t.change.referenced_by for t in MESSAGES.sources if t.change.kind == "referenced"
    }
    assert referenced == {
        "dispatch_patient": "target_id",
        "auth_user": "target_id",
        "dispatch_instruction": "target_id",
        "dispatch_project": "target_id",
        "dispatch_plan": "target_id",
    }
