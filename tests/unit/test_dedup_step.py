"""The de-duplication step's pure parts: human decisions, clusters, the auditors' report,
the outcome's reuse marker and the digest of the method."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from include.dedup import model
from include.dedup.model import RoleModel
from include.entities.phase1_core import PROFILES
from migration_ops.dedup.engine import cluster_ids
from migration_ops.dedup.report import _shape
from migration_ops.dedup.step import DedupOutcome, apply_decisions, clusters_of, method_digest

ROOT = Path(__file__).resolve().parents[2]

PAIRS = pd.DataFrame(
    {
        "id_l": [1, 3, 5],
        "id_r": [2, 4, 6],
        "match_probability": [0.99, 0.7, 0.95],
        "match_weight": [8.0, 1.2, 5.0],
        "band": ["link", "review", "link"],
        "agree_first_name": ["exact", "similar", "exact"],
    }
)


def test_distinct_decisions_drop_pairs_and_link_decisions_link_them() -> None:
    decided = {(5, 6): "distinct", (3, 4): "link", (7, 8): "link", (1, 9): "link"}
    out = apply_decisions(PAIRS, decided, candidate_ids={1, 2, 3, 4, 5, 6, 7, 8})
    rows = {(r.id_l, r.id_r): (r.band, r.linked_by) for r in out.itertuples()}
    assert rows == {
        (1, 2): ("link", "model"),
        (3, 4): ("link", "reviewer"),  # scored in the review band, linked by a reviewer
        (7, 8): ("link", "reviewer"),  # never scored: added, without a probability
    }, "5-6 kept apart; 1-9 ignored: 9 is no longer a candidate"
    assert out.loc[(out.id_l == 7), "match_probability"].isna().all()


def test_clusters_are_connected_components_named_by_their_smallest_id() -> None:
    clusters = cluster_ids([5, 1, 2, 3, 4], [(2, 1), (3, 2)])
    assert clusters == {5: 5, 1: 1, 2: 1, 3: 1, 4: 4}
    assert clusters_of(clusters) == {1}
    # transitive: 4 is linked to 3 only, 3 later to 1; 4 ends in 1's cluster
    assert cluster_ids([1, 2, 3, 4], [(3, 4), (1, 3)]) == {1: 1, 2: 2, 3: 1, 4: 1}


def test_report_carries_ids_scores_and_agreement_flags_only() -> None:
    members = [("profiles", 16, [6, 16])]
    links = [("profiles", 6, 16, 0.9995, {"first_name": "similar", "birthdate": "exact"}, "model")]
    review = [("profiles", 20, 31, 0.61, 0.7, {"last_name": "different", "email": "missing"})]
    data = _shape("run-1", members, links, review, [("profiles", "distinct", 2)])
    assert data["clusters"] == [
        {
            "entity": "profiles",
            "survivor": 16,
            "members": [6, 16],
            "links": [
                {
                    "pair": [6, 16],
                    "match_probability": 0.9995,
                    "linked_by": "model",
                    "exact": ["birthdate"],
                    "similar": ["first_name"],
                    "different": [],
                    "missing": [],
                }
            ],
        }
    ]
    assert data["review"][0]["different"] == ["last_name"]
    assert data["review"][0]["missing"] == ["email"]
    assert data["decisions_in_force"] == [
        {"entity": "profiles", "decision": "distinct", "pairs": 2}
    ]


def test_the_outcome_says_whether_the_clusters_were_reused() -> None:
    computed = DedupOutcome(85, 1, 3, 1, 1)
    assert computed.as_dict() == {
        "candidates": 85,
        "linked_pairs": 1,
        "review_pairs": 3,
        "clusters": 1,
        "linked_duplicates": 1,
        "reused": 0,
    }
    reused = DedupOutcome.reused_from(computed.counts())
    assert reused.as_dict() == computed.as_dict() | {"reused": 1}


def test_the_method_digest_is_the_same_in_every_process() -> None:
    """Sets in the model (term-frequency roles) iterate by hash seed; the digest must not."""
    code = (
        "from include.entities.phase1_core import PROFILES; "
        "from migration_ops.dedup.step import method_digest; print(method_digest(PROFILES.dedup))"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env=os.environ | {"PYTHONHASHSEED": seed, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert PROFILES.dedup is not None
    assert digests == {method_digest(PROFILES.dedup)}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BLOCKING_RULES", model.BLOCKING_RULES[1:]),
        ("TERM_FREQUENCY_ROLES", model.TERM_FREQUENCY_ROLES - {"city"}),
        ("MODEL", model.MODEL | {"sex": RoleModel("exact", "text")}),
        ("M_PRIORS", model.M_PRIORS | {"exact": (0.9, 0.1)}),
        ("SEED", model.SEED + 1),
    ],
)
def test_the_method_digest_follows_the_model(
    monkeypatch: pytest.MonkeyPatch, name: str, value: object
) -> None:
    assert PROFILES.dedup is not None
    before = method_digest(PROFILES.dedup)
    monkeypatch.setattr(model, name, value)
    assert method_digest(PROFILES.dedup) != before


def test_the_method_digest_follows_the_spec() -> None:
    spec = PROFILES.dedup
    assert spec is not None
    fewer = dataclasses.replace(spec, fields=spec.fields[:-1])
    other = dataclasses.replace(spec, candidates="profile_type = 'patient'")
    assert len({method_digest(s) for s in (spec, fewer, other)}) == 3


def test_the_dag_params_default_to_the_step_thresholds() -> None:
    """One source for the patient thresholds: the DAG's Params read the model's constants."""
    from migration_ops.dag_factory import PARAMS
    from migration_ops.dedup.step import PATIENT_THRESHOLDS

    defaults = (PARAMS["dedup_link_threshold"].value, PARAMS["dedup_review_threshold"].value)
    assert defaults == (PATIENT_THRESHOLDS.link, PATIENT_THRESHOLDS.review) == (0.9, 0.5)
