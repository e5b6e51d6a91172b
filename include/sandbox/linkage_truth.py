"""The sandbox's patients as person records with their true duplicate pairs, in memory.

Builds exactly the ``auth_user`` and ``dispatch_patient`` rows :func:`build_sandbox` would
load (same seed, same scale, same streams) without a database, joined the way the phase-1
transform joins them. The de-duplication tests and ``make bench`` measure the engine on
these at scales the end-to-end test cannot afford (scale 1.0: ≈8,500 patients).
"""

from __future__ import annotations

from datetime import date
from typing import cast

import pandas as pd

from include.sandbox import people
from include.sandbox.common import DefectLog
from include.sandbox.volumes import scaled_volumes

#: The phase step's role mapping onto these records (and onto staged profiles).
PATIENT_FIELDS: dict[str, str] = {
    "first_name": "first_name",
    "last_name": "last_name",
    "birthdate": "birthdate",
    "sex": "sex",
    "email": "email",
    "doctor": "doctor_id",
    "office": "office_id",
}


def sandbox_patients(seed: int, scale: float) -> tuple[pd.DataFrame, set[tuple[int, int]]]:
    """Patient records keyed by ``user_id`` and the true pairs ``(original, copy)`` of user ids."""
    volumes = scaled_volumes(scale)
    defects = DefectLog()
    users = people.plan_users(seed, volumes)
    offices = people.plan_offices(seed, volumes, users, defects)
    patients = people.plan_patients(seed, users, offices, defects)
    first, last = people.assign_names(seed, users, patients, offices)
    user_rows = {row[0]: row for row in people.user_rows(seed, users, first, last, defects)}
    records = []
    for row in people.patient_rows(seed, patients, users, defects):
        user = user_rows[row[1]]
        records.append(
            {
                "user_id": row[1],
                "patient_id": row[0],
                "first_name": user[5],
                "last_name": user[6],
                "email": user[7],
                "doctor_id": row[2],
                "office_id": row[3],
                "birthdate": _plausible(cast(date | None, row[4])),
                "sex": row[5],
            }
        )
    user_of = {cast(int, r["patient_id"]): cast(int, r["user_id"]) for r in records}
    truth = {
        (user_of[related], user_of[legacy_id])  # (original, copy)
        for defect, _, legacy_id, related in defects.rows
        if defect == "duplicate_patient" and related is not None
    }
    return pd.DataFrame(records), truth


def _plausible(birthdate: date | None) -> date | None:
    """The phase-1 transform's rule: a birthdate before 1900 or in the future is missing."""
    if birthdate is None or not date(1900, 1, 1) <= birthdate <= date(2025, 11, 1):
        return None
    return birthdate
