"""The catalogue of quarantine rules, read from the suites, for docs/troubleshooting.md.

Every row-level rule of every suite (``meta.row_level``) and every object-copy rule is one
row: what it means (the suite's own ``why``) and how to fix the source (:func:`fix_for`:
the rule's own fix, else its family's, else the kind of check's). The run reports use the
same fixes. Generated, so the guide cannot miss a rule: ``python -m migration_ops.rule_catalog``
rewrites the section and a unit test fails while the guide is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from include.entities import PHASES
from migration_ops.settings import EXPECTATIONS_DIR, PROJECT_ROOT

GUIDE = PROJECT_ROOT / "docs" / "troubleshooting.md"
BEGIN, END = "<!-- rules:begin (generated) -->", "<!-- rules:end -->"

#: How to fix the legacy row, by the kind of check that quarantined it.
FIX_BY_TYPE = {
    "expect_column_values_to_not_be_null": "fill the value in the legacy row",
    "expect_column_values_to_be_null": "clear the value that should not be set",
    "expect_column_values_to_be_unique": "merge or delete the duplicate legacy rows",
    "expect_column_values_to_match_regex": "correct the value's format in the legacy row",
    "expect_column_values_to_be_in_set": "use one of the allowed values (docs/mapping.md)",
    "expect_column_values_to_not_be_in_set": "replace the forbidden value",
    "expect_column_values_to_be_between": "bring the value into its range",
    "unexpected_rows_expectation": (
        "create or fix the row it refers to (a parent quarantined earlier is released by "
        "fixing that parent first)"
    ),
}

#: The fix of a ``*_resolves`` / ``*_migrated`` rule (their family's), whatever its check: the
#: row itself is fine, its parent did not reach the target (quarantined or not migrated).
PARENT_FIX = (
    "fix the parent's own quarantine (its legacy ids on the dashboard), or migrate the "
    "parent's phase first; this row then loads on the next run without any change"
)
#: How to fix a row, by the rule's family (the last word of its name): more specific than the
#: kind of check (a "resolves" rule is a not-null check on a parent that did not resolve).
FIX_BY_FAMILY = {
    "resolves": PARENT_FIX,
    "migrated": PARENT_FIX,
    "format": "correct the value in legacy (the id is in migration.quarantine), rerun",
    "known": "an unmapped code: add it to the reference map (include/transforms) or fix legacy",
    "present": "a required value is empty in legacy: fill it there, rerun",
    "unique": "duplicate legacy values: merge or correct the duplicates in legacy, rerun",
    "fraction": "a value out of range in legacy: correct it there, rerun",
    "iso": "a value out of range in legacy: correct it there, rerun",
}

#: Rules whose family and kind of check say too little: their own fix.
FIX_BY_RULE = {
    "files.source_object_present": "restore the file into the media store (same relative path)",
    "orders.jaws_resolve": (
        "fix the referenced jaw's own quarantine first (its rule and id are in "
        "migration.quarantine); the order follows on the next run"
    ),
    "projects.size_not_negative": (
        "correct the stored size in legacy (the byte count of the project's file), rerun"
    ),
    "files.size_not_negative": (
        "correct the stored size in legacy (the byte count of the file in the media store), rerun"
    ),
    "messages.target_type_mapped": (
        "decide the content type's target: add it to the entity's generic-relation "
        "configuration (include/entities), or leave the row quarantined on purpose"
    ),
    "messages.target_type_namesake": (
        "check which model the record really points at: map that app's model in the entity's "
        "generic-relation configuration (include/entities) if it belongs in the target, or "
        "correct the record's content type in legacy; never map it onto the same-named model"
    ),
    "messages.target_exists": (
        "the message points at a legacy row that does not exist: restore that row or point "
        "the message at the right one in legacy, rerun"
    ),
}


def fix_for(rule: str, check_type: str = "") -> str:
    """How to fix a row of ``rule``: its own fix, else its family's, else its check's kind's."""
    family = rule.rsplit("_", 1)[-1]
    return (
        FIX_BY_RULE.get(rule)
        or FIX_BY_FAMILY.get(family)
        or FIX_BY_TYPE.get(
            check_type, "correct the legacy row (the rule's meaning says what is wrong), rerun"
        )
    )


def row_level_rules() -> list[tuple[str, str, str]]:
    """``(rule, what it means, how to fix)`` of every quarantine rule, in phase order."""
    rules: list[tuple[str, str, str]] = []
    for phase in PHASES:
        for entity in phase.ordered():
            suite = json.loads((EXPECTATIONS_DIR / entity.suite).read_text())
            for expectation in suite["expectations"]:
                meta = expectation["meta"]
                if meta.get("row_level"):
                    fix = fix_for(meta["rule"], expectation["type"])
                    rules.append((meta["rule"], meta["why"], fix))
            if entity.object_copy is not None:
                rules.append(
                    (
                        entity.object_copy.missing_rule,
                        "The row's file is not in the legacy media store: its bytes cannot be "
                        "copied to Storage.",
                        fix_for(entity.object_copy.missing_rule),
                    )
                )
    return rules


def section() -> str:
    """The generated Markdown table, between its markers."""
    lines = [BEGIN, "", "| rule | what it means | fix in the legacy data |", "|---|---|---|"]
    for rule, why, fix in row_level_rules():
        lines.append(f"| `{rule}` | {why.replace('|', '/')} | {fix} |")
    return "\n".join([*lines, "", END])


def render(text: str) -> str:
    """``text`` with its generated section replaced by the current one."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + section() + text[end:]


def main() -> int:
    """Rewrite the rule section of docs/troubleshooting.md."""
    GUIDE.write_text(render(GUIDE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{len(row_level_rules())} rules written to {Path(GUIDE).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
