"""docs/troubleshooting.md lists every quarantine rule the suites and object copy can raise."""

from __future__ import annotations

import json

from migration_ops import rule_catalog
from migration_ops.settings import EXPECTATIONS_DIR


def test_the_guide_is_current() -> None:
    text = rule_catalog.GUIDE.read_text(encoding="utf-8")
    assert rule_catalog.render(text) == text, "run: python -m migration_ops.rule_catalog"


def test_every_row_level_rule_is_in_the_catalogue() -> None:
    in_suites = {
        e["meta"]["rule"]
        for path in EXPECTATIONS_DIR.glob("*.json")
        for e in json.loads(path.read_text())["expectations"]
        if e["meta"].get("row_level")
    }
    listed = [rule for rule, _, _ in rule_catalog.row_level_rules()]
    assert len(in_suites) == 37
    assert set(listed) == in_suites | {"files.source_object_present"}
    assert len(listed) == len(set(listed)) == 38


def test_every_rule_has_a_specific_fix_and_reports_use_it() -> None:
    from migration_ops.audit import report

    generic = rule_catalog.fix_for("no.such_rule")
    fixes = {rule: fix for rule, _, fix in rule_catalog.row_level_rules()}
    assert [rule for rule, fix in fixes.items() if fix == generic] == []
    assert fixes["messages.target_exists"] == rule_catalog.FIX_BY_RULE["messages.target_exists"]
    assert (
        fixes["messages.target_type_namesake"]
        == rule_catalog.FIX_BY_RULE["messages.target_type_namesake"]
    )
    assert fixes["orders.patient_resolves"] == rule_catalog.FIX_BY_FAMILY["resolves"]
    assert {rule: report.fix_for(rule) for rule in fixes} == fixes


def test_a_rule_waiting_for_its_parent_says_to_fix_or_migrate_the_parent() -> None:
    fixes = {rule: fix for rule, _, fix in rule_catalog.row_level_rules()}
    waiting = sorted(r for r in fixes if r.endswith(("_resolves", "_migrated")))
    assert len(waiting) == 20
    assert {fixes[r] for r in waiting} == {rule_catalog.PARENT_FIX}
    assert fixes["doctor_offices.office_resolves"].startswith("fix the parent's own quarantine")
    assert fixes["offices.tax_rate_fraction"] == rule_catalog.FIX_BY_FAMILY["fraction"]
