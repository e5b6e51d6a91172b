"""The catalogue of quarantine rules, read from the suites, for docs/troubleshooting.md.

Every row-level rule of every suite (``meta.row_level``) and every object-copy rule is one
row: what it means (the suite's own ``why``) and how to fix the source, by the kind of
check. Generated, so the guide cannot miss a rule: ``python -m migration_ops.rule_catalog``
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

#: The fix of a ``*_resolves`` / ``*_migrated`` rule, whatever its check: the row itself is
#: fine, its parent did not reach the target (quarantined or not migrated).
PARENT_FIX = (
    "fix the parent's own quarantine (its legacy ids on the dashboard), or migrate the "
    "parent's phase first; this row then loads on the next run without any change"
)
PARENT_RULE_SUFFIXES = ("_resolves", "_migrated")


def fix_for(rule: str, expectation_type: str) -> str:
    """How to fix a row quarantined by ``rule``: its parent's rules first, else by check."""
    if rule.endswith(PARENT_RULE_SUFFIXES):
        return PARENT_FIX
    return FIX_BY_TYPE.get(expectation_type, "correct the legacy row")


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
                        "restore the file into the media store (same relative path)",
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
