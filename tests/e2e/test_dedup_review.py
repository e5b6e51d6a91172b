"""The middle band a human reviews, and the survivor a cluster reads through, end to end.

A phase-1 target (sandbox scale 0.01, seed 11: 85 patient candidates, one duplicate pair
6–16) is de-duplicated again by runs that stage the profiles and are never loaded:

* with a link threshold above the pair's probability, the pair lands in
  ``migration.dedup_review`` with its exact scores and per-field agreement (ids and flags
  only), and a reviewer's decision, ``distinct`` or ``link``, takes it out of the queue;
* with the pair linked by decision, the linkage fields and activity of the two staged rows
  are set so that each step of the documented survivorship (most complete, then most recent
  activity, then the lowest legacy id) alone decides the survivor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from include.entities import get_phase
from include.entities.phase1_core import PROFILES
from migration_ops import local_env, pipeline, runs
from migration_ops.db import connect
from migration_ops.dedup import step
from migration_ops.dedup.engine import Thresholds
from migration_ops.runs import RunContext
from tests.e2e.conftest import run_phase

pytestmark = pytest.mark.e2e
PHASE_1 = get_phase(1)
#: The pair (6, 16) scores below this link threshold, above the review threshold.
REVIEWING = Thresholds(link=0.9999, review=0.5)


@pytest.fixture(scope="module")
def target(sandbox_dsn: str, pg_socket: str) -> str:
    dsn = local_env.ensure_supabase_database(pg_socket, "e2e_dedup_review", recreate=True)
    run_phase(sandbox_dsn, dsn, PHASE_1, "review-1")
    return dsn


@pytest.fixture
def staged(sandbox_dsn: str, target: str) -> Iterator[Callable[[str], RunContext]]:
    """Factory: a phase-1 run with the profiles extracted and transformed (never loaded).

    The decisions table starts empty for every test and is emptied again after it."""
    started: list[str] = []

    def stage(run_id: str) -> RunContext:
        if started:  # one live run per phase: the previous one is never loaded
            runs.mark_failed(target, started[-1])
        run = runs.begin_run(target, PHASE_1, run_id, triggered_by="pytest", params={})
        started.append(run_id)
        pipeline.extract_step(sandbox_dsn, target, run, [PROFILES])
        pipeline.transform_step(target, run, PROFILES)
        return run

    _decide(target, None)
    yield stage
    _decide(target, None)
    if started:
        runs.mark_failed(target, started[-1])


def _decide(target: str, decision: str | None) -> None:
    """The reviewer's decision on the pair (6, 16); ``None`` clears every decision."""
    with connect(target) as conn:
        conn.execute("delete from migration.dedup_decisions where entity = 'profiles'")
        if decision is not None:
            conn.execute(
                "insert into migration.dedup_decisions "
                "(entity, legacy_id_l, legacy_id_r, decision, decided_by, reason) "
                "values ('profiles', 6, 16, %s, 'reviewer-1', 'checked the records')",
                (decision,),
            )


def _queue(target: str) -> list[tuple[Any, ...]]:
    with connect(target) as conn:
        return conn.execute(
            "select legacy_id_l, legacy_id_r, round(match_probability::numeric, 6), "
            "round(match_weight::numeric, 4), agreement, first_run_id, last_run_id "
            "from migration.dedup_review where entity = 'profiles' order by 1, 2"
        ).fetchall()


def _links(target: str) -> list[tuple[Any, ...]]:
    with connect(target) as conn:
        return conn.execute(
            "select legacy_id_l, legacy_id_r, linked_by, unlinked_at is null "
            "from migration.dedup_links where entity = 'profiles' order by 1, 2"
        ).fetchall()


def test_the_middle_band_is_queued_with_its_scores_and_a_decision_dequeues_it(
    staged: Callable[[str], RunContext], target: str
) -> None:
    with connect(target) as conn:
        conn.execute("delete from migration.dedup_links where entity = 'profiles'")
    run = staged("review-2")
    outcome = step.dedup_entity(target, PROFILES, run.run_id, REVIEWING)
    assert (outcome.candidates, outcome.linked_pairs, outcome.review_pairs) == (85, 0, 1)
    assert _queue(target) == [
        (
            6,
            16,
            Decimal("0.999239"),
            Decimal("10.3584"),
            {
                "birthdate": "exact",
                "doctor": "exact",
                "email": "missing",
                "first_name": "similar",
                "last_name": "exact",
                "sex": "exact",
            },
            "review-2",
            "review-2",
        )
    ]
    assert _links(target) == []

    _decide(target, "distinct")
    run = staged("review-3")
    outcome = step.dedup_entity(target, PROFILES, run.run_id, REVIEWING)
    assert (outcome.linked_pairs, outcome.review_pairs) == (0, 0)
    assert _queue(target) == [], "a decided pair leaves the queue"
    assert _links(target) == []

    _decide(target, "link")
    run = staged("review-4")
    outcome = step.dedup_entity(target, PROFILES, run.run_id, REVIEWING)
    assert (outcome.linked_pairs, outcome.review_pairs) == (1, 0)
    assert _queue(target) == []
    assert _links(target) == [(6, 16, "reviewer", True)]


def _survivor(target: str, run_id: str) -> list[tuple[int, int, int]]:
    with connect(target) as conn:
        return conn.execute(
            "select legacy_id, survivor_legacy_id, completeness from migration.dedup_members "
            "where run_id = %s and legacy_id in (6, 16) order by legacy_id",
            (run_id,),
        ).fetchall()


def _stage_pair(target: str, *, office_of_6: bool, recent: int | None) -> None:
    """Set the staged pair's evidence: user 6's office (a linkage field) and which of the
    two was active last (``None``: both at the same instant)."""
    with connect(target) as conn:
        conn.execute(
            "update staging.profiles__transformed set patient_updated_at = "
            "timestamptz '2020-01-01', patient_submitted_at = null, last_login_at = null, "
            "date_joined = timestamptz '2010-01-01' where legacy_user_id in (6, 16)"
        )
        if recent is not None:
            conn.execute(
                "update staging.profiles__transformed set patient_updated_at = "
                "timestamptz '2024-06-01' where legacy_user_id = %s",
                (recent,),
            )
        if not office_of_6:
            conn.execute(
                "update staging.profiles__transformed set legacy_office_id = null "
                "where legacy_user_id = 6"
            )


def test_the_survivor_is_the_most_complete_then_most_recent_then_lowest_id(
    staged: Callable[[str], RunContext], target: str
) -> None:
    _decide(target, "link")  # linked whatever the staged changes do to the score
    cases = [
        # 16 has one linkage field more (6 of 7: no e-mail), 6 was active last: completeness wins
        ("survive-1", {"office_of_6": False, "recent": 6}, [(6, 16, 5), (16, 16, 6)]),
        # equally complete, 16 active last: activity wins over the lower id
        ("survive-2", {"office_of_6": True, "recent": 16}, [(6, 16, 6), (16, 16, 6)]),
        # equally complete, equally recent: the lowest legacy id
        ("survive-3", {"office_of_6": True, "recent": None}, [(6, 6, 6), (16, 6, 6)]),
    ]
    for run_id, evidence, members in cases:
        run = staged(run_id)
        _stage_pair(target, **evidence)
        step.dedup_entity(target, PROFILES, run.run_id, REVIEWING)
        assert _survivor(target, run_id) == members, run_id
