"""The mutation list stays applicable: every bug it names still has exactly one place to go.

``make mutate`` is slow and not part of ``make test``; this check is, so a refactoring that
moves the text a mutation points at fails here (re-point the mutation) instead of silently
shrinking the mutation check.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _runner() -> ModuleType:
    """``scripts/mutate.py`` as a module (scripts/ is not a package)."""
    if "mutate" not in sys.modules:
        spec = importlib.util.spec_from_file_location("mutate", ROOT / "scripts" / "mutate.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["mutate"] = module  # dataclasses resolve annotations through it
        spec.loader.exec_module(module)
    return sys.modules["mutate"]


def test_no_file_is_left_mutated_by_a_killed_run() -> None:
    journal = _runner().JOURNAL
    assert not journal.exists(), (
        f"{journal} says a killed `make mutate` left a file mutated: "
        "`python scripts/mutate.py --check` restores it"
    )


def test_every_mutation_applies_once_and_names_existing_tests() -> None:
    runner = _runner()
    mutations = runner.load(runner.DEFAULT_LIST)
    assert runner.problems(mutations) == []
    assert len(mutations) >= 15


def test_the_list_covers_the_rule_families_issue_21_names() -> None:
    ids = {m.id for m in _runner().load(ROOT / "tests" / "mutations.toml")}
    families = (
        "profile-typing-",
        "quarantine-offices-",
        "quarantine-orders-",
        "quarantine-messages-",
        "quarantine-workflow-tasks-",
        "upsert-anti-join",
        "reconciliation-",
        "errors-",
        "generic-relation-config-without-app-label",
        "generic-relation-config-without-model",
        "generic-relation-targets-without-app-label",
        "generic-relation-targets-without-model",
        "legacy-",
        "tax-rate-",
        "country-",
        "text-repair-",
        "backup-",
        "rollback-",
        "gate-",
        "sync-",
        "dedup-",
        "ai-",
    )
    missing = [f for f in families if not any(i.startswith(f) for i in ids)]
    assert missing == []


def test_a_mutation_whose_text_moved_is_reported(tmp_path) -> None:
    runner = _runner()
    moved = runner.Mutation(
        id="moved",
        path="include/sql/transform/messages.sql",
        find="this text is not in the file",
        replace="x",
        tests=("tests/unit/test_gate.py::test_no_such_test",),
        description="",
    )
    assert runner.problems([moved]) == [
        "moved: the text to find occurs 0 times in include/sql/transform/messages.sql, not once",
        "moved: no test test_no_such_test in tests/unit/test_gate.py",
    ]


def test_mutating_and_restoring_leaves_the_file_byte_identical(tmp_path, monkeypatch) -> None:
    runner = _runner()
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    monkeypatch.setattr(runner, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(runner, "JOURNAL", tmp_path / "state" / "journal.json")
    target = tmp_path / "rule.sql"
    target.write_bytes(b"select 1 / 100;\r\n-- caf\xc3\xa9\n")
    before = target.stat().st_mtime_ns
    mutation = runner.Mutation("m", "rule.sql", "/ 100", "/ 1", ("t",), "")
    mutated = runner.Mutated(mutation)
    mutated.apply()
    assert b"/ 1;" in target.read_bytes()
    # a run killed here leaves the journal: the next run repairs the file first
    assert runner.repair_leftover() == "rule.sql"
    assert target.read_bytes() == b"select 1 / 100;\r\n-- caf\xc3\xa9\n"
    assert target.stat().st_mtime_ns == before
    assert not (tmp_path / "state" / "journal.json").exists()
    mutated.apply()
    mutated.restore()
    assert target.read_bytes() == b"select 1 / 100;\r\n-- caf\xc3\xa9\n"
    assert list((tmp_path / "state").iterdir()) == []
