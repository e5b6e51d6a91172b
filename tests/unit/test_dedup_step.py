"""The de-duplication step's pure parts: human decisions, clusters, the auditors' report."""

from __future__ import annotations

import pandas as pd

from migration_ops.dedup.engine import cluster_ids
from migration_ops.dedup.report import _shape
from migration_ops.dedup.step import apply_decisions, clusters_of

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
