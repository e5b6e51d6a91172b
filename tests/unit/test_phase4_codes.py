"""Phase 4 code maps: order states, template functions, task jaws (no database).

The target's CHECK constraints and the suites carry the same label sets; these tests read
them from the SQL and JSON files, so the three can not drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from include.transforms.phase4_codes import (
    ORDER_STATES,
    REF_STATE_ORDER_STATE,
    REF_TASK_JAW,
    REF_TEMPLATE_FUNCTION,
    TASK_JAWS,
    TEMPLATE_FUNCTIONS,
)
from include.transforms.reference import REFERENCE_TABLES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "include/sql/target/400_phase4_workflow.sql").read_text(encoding="utf-8")


def _as_dict(rows: tuple[tuple[object, ...], ...]) -> dict[object, object]:
    return {row[0]: row[1] for row in rows}


def _suite_value_set(suite: str, rule: str) -> list[object]:
    expectations = json.loads((ROOT / "expectations" / suite).read_text(encoding="utf-8"))
    (found,) = [e for e in expectations["expectations"] if e["meta"]["rule"] == rule]
    return list(found["kwargs"]["value_set"])


def test_only_the_observed_state_codes_are_mapped() -> None:
    assert {s.legacy_status for s in ORDER_STATES} == {11, 12}
    assert _as_dict(REF_STATE_ORDER_STATE.rows) == {11: "treatment_active", 12: "case_closed"}
    for state in ORDER_STATES:
        assert f"('{state.code}', '{state.name}', {state.legacy_status}," in SCHEMA


def test_template_functions_agree_with_schema_and_suite() -> None:
    assert {str(row[1]) for row in REF_TEMPLATE_FUNCTION.rows} == set(TEMPLATE_FUNCTIONS)
    assert _as_dict(REF_TEMPLATE_FUNCTION.rows) == {1: "process", 2: "archive", 4: "update"}
    labels = ", ".join(f"'{label}'" for label in TEMPLATE_FUNCTIONS)
    assert f"check (function in ({labels}))" in SCHEMA
    assert _suite_value_set("workflow_templates.json", "workflow_templates.function_known") == list(
        TEMPLATE_FUNCTIONS
    )


def test_task_jaws_agree_with_schema_and_suite() -> None:
    assert _as_dict(REF_TASK_JAW.rows) == {1: "both", 2: "upper", 3: "lower"}
    labels = ", ".join(f"'{label}'" for label in TASK_JAWS)
    assert f"check (jaw in ({labels}))" in SCHEMA
    assert _suite_value_set("workflow_tasks.json", "workflow_tasks.jaw_known") == list(TASK_JAWS)


def test_maps_are_registered() -> None:
    for table in (REF_STATE_ORDER_STATE, REF_TEMPLATE_FUNCTION, REF_TASK_JAW):
        assert REFERENCE_TABLES[table.name] is table
