"""The phase 3 and 4 Great Expectations suites: well formed and GX 1.24-valid (no database).

The same static checks as ``test_suites.py`` applies to phase 1, over every entity of phases 3
and 4; the checks against the real transformed tables (columns, types, NOT NULL coverage) live
beside the rule tests in ``test_phase3_transforms.py`` / ``test_phase4_transforms.py``, which
build those tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from include.entities.phase3_communication import PHASE_3
from include.entities.phase4_workflow import PHASE_4
from include.entities.spec import EntitySpec
from tests.unit.test_suites import RULE, gx_class

ROOT = Path(__file__).resolve().parents[2]
ENTITIES = [*PHASE_3.entities, *PHASE_4.entities]


def expectations_of(entity: EntitySpec) -> list[dict[str, Any]]:
    suite = json.loads((ROOT / "expectations" / entity.suite).read_text(encoding="utf-8"))
    assert suite["name"] == entity.name
    return list(suite["expectations"])


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_suite_is_well_formed(entity: EntitySpec) -> None:
    expectations = expectations_of(entity)
    rules = [e["meta"]["rule"] for e in expectations]
    assert len(rules) == len(set(rules)), "one rule name per expectation"
    for expectation in expectations:
        assert set(expectation) <= {"type", "kwargs", "meta"}
        meta = expectation["meta"]
        assert RULE.fullmatch(meta["rule"]) and meta["rule"].startswith(f"{entity.name}.")
        assert isinstance(meta["why"], str) and len(meta["why"]) > 20
        assert meta.get("row_level", False) in (True, False)


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_every_expectation_exists_in_gx_and_its_kwargs_validate(entity: EntitySpec) -> None:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    for expectation in expectations_of(entity):
        domain = ExpectationConfiguration(**expectation).to_domain_obj()  # pydantic validation
        assert type(domain) is gx_class(expectation["type"])


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_row_level_rules_flag_every_row_and_other_rules_never_tolerate_failures(
    entity: EntitySpec,
) -> None:
    from great_expectations.expectations.expectation import ColumnMapExpectation

    for expectation in expectations_of(entity):
        if expectation["meta"].get("row_level"):
            assert issubclass(gx_class(expectation["type"]), ColumnMapExpectation)
            assert "mostly" not in expectation["kwargs"], "a quarantine rule must flag every row"
        elif "mostly" in expectation["kwargs"]:
            # the one report-only expectation: counts cycle edges, never blocks the load
            assert expectation["meta"]["rule"].endswith("_reported")


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_key_and_dropped_rows_are_guarded_by_gates(entity: EntitySpec) -> None:
    expectations = expectations_of(entity)
    gates = {
        (e["type"], e["kwargs"].get("column"))
        for e in expectations
        if not e["meta"].get("row_level")
    }
    assert ("expect_column_values_to_be_unique", entity.key) in gates, "fan-out guard"
    assert ("expect_column_values_to_not_be_null", entity.key) in gates
    assert ("expect_table_columns_to_match_set", None) in gates
    dropped = [e for e in expectations if e["meta"]["rule"] == f"{entity.name}.every_source_row"]
    assert len(dropped) == 1
    query = dropped[0]["kwargs"]["unexpected_rows_query"]
    # GX renders {batch} as "(select ...) AS subselect" unless the query has a JOIN
    assert "left join {batch} as t" in query
    assert f"staging.{entity.name}__{entity.primary_source.table}" in query
    assert f"q.entity = '{entity.name}'" in query


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_resolution_helpers_are_guarded_against_nulls_and_unknown_cases(entity: EntitySpec) -> None:
    """A NULL is never "in" or "not in" a set: each case column needs both gates."""
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
