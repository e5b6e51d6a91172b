"""The de-duplication step skips Splink when its inputs have not changed, and only then.

A phase-1 target (sandbox scale 0.01, seed 11: 85 patient candidates, one duplicate pair
6–16) is de-duplicated again and again. With nothing changed the step copies the clusters
of the run that computed them (Splink is made to refuse); each input that the outcome is a
function of (a linkage field, the survivorship's activity, a new patient, a reviewer's
decision, an unlink, the thresholds, the spec) makes it compute again; a step killed
before its commit leaves no memo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from include.entities import get_phase
from include.entities.phase1_core import PROFILES
from include.entities.spec import EntitySpec
from migration_ops import local_env, pipeline, runs
from migration_ops.db import connect, scalar
from migration_ops.dedup import report, step
from migration_ops.dedup.engine import Thresholds
from migration_ops.runs import RunContext
from tests.e2e.conftest import run_phase

pytestmark = pytest.mark.e2e
PHASE_1 = get_phase(1)


def _members(target: str, run_id: str) -> list[tuple[int, int, int]]:
    with connect(target) as conn:
        return conn.execute(
            "select legacy_id, survivor_legacy_id, completeness from migration.dedup_members "
            "where run_id = %s and entity = 'profiles' order by legacy_id",
            (run_id,),
        ).fetchall()


def _memo(target: str) -> tuple[str, str] | None:
    with connect(target) as conn:
        row = conn.execute(
            "select run_id, fingerprint from migration.dedup_inputs where entity = 'profiles'"
        ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def _linked(target: str) -> set[tuple[int, int]]:
    with connect(target) as conn:
        rows = conn.execute(
            "select legacy_user_id, merged_into_legacy_user_id from public.profiles "
            "where merged_into is not null"
        ).fetchall()
    return {(int(a), int(b)) for a, b in rows}


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("Splink ran although nothing changed")


@pytest.fixture(scope="module")
def rerun(sandbox_dsn: str, pg_socket: str) -> dict[str, Any]:
    """Phase 1 run twice into a fresh target, the second time with Splink refusing to run.

    Between the two the links are cleared, as if the first run's load had been killed before
    it applied them. What the test checks is observed right after the second run: the other
    tests change the target afterwards (decisions, thresholds, staged rows).
    """
    dsn = local_env.ensure_supabase_database(pg_socket, "e2e_dedup_reuse", recreate=True)
    run_phase(sandbox_dsn, dsn, PHASE_1, "reuse-1")
    first_report = report.collect(dsn, "reuse-1")
    with connect(dsn) as conn:
        conn.execute(
            "update public.profiles set merged_into = null, merged_into_legacy_user_id = null"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(step.child, "deduplicate", _refuse)
        run_phase(sandbox_dsn, dsn, PHASE_1, "reuse-2")
    with connect(dsn) as conn:
        merged = scalar(
            conn,
            "select merged_rows from migration.reconciliation "
            "where run_id = 'reuse-2' and entity = 'profiles'",
        )
    return {
        "dsn": dsn,
        "members": {run_id: _members(dsn, run_id) for run_id in ("reuse-1", "reuse-2")},
        "linked": _linked(dsn),
        "memo": _memo(dsn),
        "reports": (first_report, report.collect(dsn, "reuse-2")),
        "merged": merged,
    }


@pytest.fixture(scope="module")
def target(rerun: dict[str, Any]) -> str:
    """The target of :func:`rerun`, for the tests that change its inputs one at a time."""
    return str(rerun["dsn"])


@pytest.fixture
def splink_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every call of the linkage engine from the step (the real engine still runs)."""
    calls: list[int] = []
    real = step.child.deduplicate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(step.child, "deduplicate", counting)
    return calls


@pytest.fixture
def staged(sandbox_dsn: str, target: str) -> Iterator[Callable[[str], RunContext]]:
    """Factory: a phase-1 run with the profiles extracted and transformed (not loaded)."""
    started: list[str] = []

    def stage(run_id: str) -> RunContext:
        run = runs.begin_run(target, PHASE_1, run_id, triggered_by="pytest", params={})
        started.append(run_id)
        pipeline.extract_step(sandbox_dsn, target, run, [PROFILES])
        pipeline.transform_step(target, run, PROFILES)
        return run

    yield stage
    for run_id in started:
        runs.mark_failed(target, run_id)  # never loaded


def test_a_rerun_with_nothing_changed_reuses_the_clusters(rerun: dict[str, Any]) -> None:
    members = rerun["members"]
    assert members["reuse-2"] == members["reuse-1"] and len(members["reuse-2"]) == 85
    assert rerun["linked"] == {(6, 16)}, "the load re-applied reuse-1's links"
    assert rerun["merged"] == 1
    assert rerun["memo"] is not None and rerun["memo"][0] == "reuse-1", "the memo is kept"
    first_report, second_report = rerun["reports"]
    assert first_report is not None and second_report is not None
    assert {**second_report, "run_id": "reuse-1"} == first_report, "the same evidence"


def _same(target: str) -> tuple[EntitySpec, Thresholds]:
    return PROFILES, step.PATIENT_THRESHOLDS


def _linkage_field(target: str) -> tuple[EntitySpec, Thresholds]:
    with connect(target) as conn:
        conn.execute(
            "update staging.profiles__transformed set last_name = last_name || 'x' "
            "where legacy_user_id = 16"
        )
    return _same(target)


def _activity(target: str) -> tuple[EntitySpec, Thresholds]:
    with connect(target) as conn:  # a linkage field unchanged: only the survivorship's input
        conn.execute(
            "update staging.profiles__transformed set last_login_at = '2031-01-01T00:00:00Z' "
            "where legacy_user_id = 6"
        )
    return _same(target)


def _new_patient(target: str) -> tuple[EntitySpec, Thresholds]:
    with connect(target) as conn:
        conn.execute(
            "create temporary table copy on commit drop as "
            "select * from staging.profiles__transformed where legacy_user_id = 16"
        )
        conn.execute("update copy set legacy_user_id = 100000, legacy_patient_id = 100000")
        conn.execute("insert into staging.profiles__transformed select * from copy")
    return _same(target)


def _reviewer_decision(target: str) -> tuple[EntitySpec, Thresholds]:
    with connect(target) as conn:
        conn.execute(
            "insert into migration.dedup_decisions "
            "(entity, legacy_id_l, legacy_id_r, decision, decided_by) "
            "select 'profiles', min(legacy_id), max(legacy_id), 'link', 'reviewer-1' "
            "from migration.dedup_members where run_id = 'reuse-1'"
        )
    return _same(target)


def _unlink(target: str) -> tuple[EntitySpec, Thresholds]:
    assert step.unlink(target, 6, actor="reviewer-1") == [6, 16]
    return _same(target)


def _thresholds(target: str) -> tuple[EntitySpec, Thresholds]:
    return PROFILES, Thresholds(link=0.95, review=0.5)


def _spec(target: str) -> tuple[EntitySpec, Thresholds]:
    assert PROFILES.dedup is not None
    spec = dataclasses.replace(PROFILES.dedup, activity="date_joined")
    return dataclasses.replace(PROFILES, dedup=spec), step.PATIENT_THRESHOLDS


@pytest.mark.parametrize(
    "change",
    [
        _linkage_field,
        _activity,
        _new_patient,
        _reviewer_decision,
        _unlink,
        _thresholds,
        _spec,
    ],
    ids=[
        "linkage-field",
        "activity",
        "new-patient",
        "reviewer-decision",
        "unlink",
        "thresholds",
        "spec",
    ],
)
def test_any_changed_input_computes_again(
    target: str,
    staged: Callable[[str], RunContext],
    splink_calls: list[int],
    change: Callable[[str], tuple[EntitySpec, Thresholds]],
) -> None:
    run = staged(f"reuse-{change.__name__.strip('_')}")
    step.dedup_entity(target, PROFILES, run.run_id)  # whatever earlier tests left: now known
    before = len(splink_calls)
    unchanged = step.dedup_entity(target, PROFILES, run.run_id)
    assert (unchanged.reused, len(splink_calls)) == (1, before), "nothing changed yet"
    remembered = _memo(target)
    try:
        entity, thresholds = change(target)
        changed = step.dedup_entity(target, entity, run.run_id, thresholds)
    finally:
        with connect(target) as conn:  # decisions outlive the run: leave none behind
            conn.execute("delete from migration.dedup_decisions")
    assert (changed.reused, len(splink_calls)) == (0, before + 1), "Splink ran again"
    assert remembered is not None and _memo(target) is not None
    assert _memo(target)[1] != remembered[1], "the memo now describes the changed inputs"


def test_a_retried_step_of_the_computing_run_keeps_its_members(
    target: str, staged: Callable[[str], RunContext], splink_calls: list[int]
) -> None:
    run = staged("reuse-retried")
    first = step.dedup_entity(target, PROFILES, run.run_id, Thresholds(link=0.93, review=0.5))
    retried = step.dedup_entity(target, PROFILES, run.run_id, Thresholds(link=0.93, review=0.5))
    assert len(splink_calls) == 1 and retried.reused == 1
    assert retried.counts() == first.counts()
    assert len(_members(target, run.run_id)) == first.candidates == 85


def test_a_step_killed_before_its_commit_leaves_no_memo(
    target: str,
    staged: Callable[[str], RunContext],
    splink_calls: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = staged("reuse-killed")
    thresholds = Thresholds(link=0.97, review=0.6)  # inputs no memo has seen
    remembered = _memo(target)
    real = step._remember

    def remember_then_die(conn: psycopg.Connection[Any], *args: Any) -> None:
        real(conn, *args)  # members and memo written, not committed: the session dies
        conn.execute("select pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(step, "_remember", remember_then_die)
    with pytest.raises(psycopg.OperationalError):
        step.dedup_entity(target, PROFILES, run.run_id, thresholds)
    assert len(splink_calls) == 1
    assert _memo(target) == remembered, "no memo without its members"
    assert _members(target, run.run_id) == []

    monkeypatch.setattr(step, "_remember", real)
    rerun = step.dedup_entity(target, PROFILES, run.run_id, thresholds)
    assert (rerun.reused, len(splink_calls)) == (0, 2), "the rerun computes"
    assert _memo(target) is not None and _memo(target)[0] == run.run_id
    assert len(_members(target, run.run_id)) == rerun.candidates == 85
