"""Duplicate patients the way production has them, and synthetic patients for the benchmark.

A second registration of the same person (by another doctor, or again years later) differs
from the first in the ways the legacy documents describe (§1e de-duplication: the nexus
deduplicator allowed for day/month swaps and year-off-by-one) and the ways any registry
knows: the name spelt with other case, spaces or accents, a typo in the name, a changed
surname, a typo in the date of birth, another e-mail address, another treating doctor.

:func:`patient_variant` decides *which* variants a copy gets; the sandbox
(:mod:`include.sandbox.people`) applies them to its duplicate patients and logs each pair in
its defect ledger, and :func:`synthetic_patients` builds the labelled 10k/100k patient sets
of ``make bench`` with the same variants.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date, timedelta

from include.sandbox.text import ascii_fold, name_variant

#: Share of copies that get each extra variant; a copy gets at most one (a second
#: registration usually differs from the first in one thing besides spelling and the date of
#: birth). Assumptions, not documented numbers: the legacy documents name the variants but
#: not their frequencies. ``make bench`` reports recall per variant, so none hides.
EXTRA_VARIANTS: dict[str, float] = {
    "name_typo": 0.08,
    "surname_changed": 0.04,
    "birthdate_typo": 0.04,
    "other_doctor": 0.08,
}


def patient_variant(rng: random.Random) -> set[str]:
    """The extra variant of one duplicate, if any (beside its spelling and DOB variants)."""
    roll = rng.random()
    for name, share in EXTRA_VARIANTS.items():
        if roll < share:
            return {name}
        roll -= share
    return set()


def typo(rng: random.Random, text: str) -> str:
    """One keyboard slip: two neighbouring letters swapped, one dropped or one doubled."""
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]
    if kind == "drop":
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def birthdate_typo(rng: random.Random, original: date | None) -> date | None:
    """A date of birth with one mistyped digit of the day (still a valid date)."""
    if original is None:
        return None
    tens, units = divmod(original.day, 10)
    candidates = sorted(
        {tens * 10 + u for u in range(10)} | {t * 10 + units for t in range(4)} - {original.day}
    )
    valid = [d for d in candidates if 1 <= d <= 28]  # valid in every month
    return original.replace(day=rng.choice(valid))


def birthdate_variant(rng: random.Random, original: date | None) -> date | None:
    """DOB as a second registration records it: same, day/month swapped, or year +-1."""
    if original is None:
        return None
    kind = rng.choice(("same", "swap", "year"))
    if kind == "swap" and original.day <= 12 and original.day != original.month:
        return original.replace(month=original.day, day=original.month)
    if kind == "same":
        return original
    year = original.year + rng.choice((-1, 1))
    try:
        return original.replace(year=year)
    except ValueError:  # 29 February in a year without one
        return original.replace(year=year, day=28)


def copy_name(
    rng: random.Random, first: str, last: str, variants: set[str], new_surname: str
) -> tuple[str, str]:
    """A duplicate's name: spelling variant, then a typo or a changed surname if drawn."""
    first, last = name_variant(rng, first, last)
    if "surname_changed" in variants:
        last = new_surname
    elif "name_typo" in variants:
        if rng.random() < 0.5:
            first = typo(rng, first)
        else:
            last = typo(rng, last)
    return first, last


# ------------------------------------------------------------------ synthetic patients ----
@dataclass(frozen=True)
class SyntheticPatient:
    """One synthetic patient record as ``make bench`` feeds it to the engine."""

    patient_id: int
    entity_id: int
    first_name: str
    last_name: str
    birthdate: date | None
    sex: str | None
    email: str | None
    doctor: int
    office: int


def _syllable_name(rng: random.Random, syllables: int) -> str:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)).title()


def synthetic_patients(
    count: int, seed: int, duplicate_rate: float = 0.05
) -> list[SyntheticPatient]:
    """``count`` patient records, ``duplicate_rate`` of them second registrations of another.

    Names are drawn from pools that grow with ``count`` (as a real population's do), so a
    larger set does not simply repeat the same namesakes: what the benchmark measures is
    the engine's scaling, not an artefact of a fixed name list.
    """
    rng = random.Random(f"synthetic-patients:{seed}")
    pool = max(200, count // 10)
    first_names = [_syllable_name(rng, rng.choice((2, 3))) for _ in range(pool // 4)]
    last_names = [_syllable_name(rng, rng.choice((2, 3, 4))) for _ in range(pool)]
    doctors = max(5, count // 25)
    originals = round(count * (1 - duplicate_rate))
    records: list[SyntheticPatient] = []
    for i in range(originals):
        first, last = rng.choice(first_names), rng.choice(last_names)
        birthdate = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        doctor = rng.randrange(doctors)
        email = f"{ascii_fold(first).lower()}.{ascii_fold(last).lower()}{i}@example.org"
        records.append(
            SyntheticPatient(
                i + 1, i + 1, first, last, None if rng.random() < 0.03 else birthdate,
                rng.choice(("m", "f", None)), email if rng.random() < 0.3 else None,
                doctor, doctor // 2,
            )
        )  # fmt: skip
    for i in range(originals, count):
        original = records[rng.randrange(originals)]
        records.append(_synthetic_copy(rng, original, i + 1, rng.choice(last_names), doctors))
    return records


def _synthetic_copy(
    rng: random.Random, original: SyntheticPatient, patient_id: int, surname: str, doctors: int
) -> SyntheticPatient:
    variants = patient_variant(rng)
    first, last = copy_name(rng, original.first_name, original.last_name, variants, surname)
    birthdate = birthdate_variant(rng, original.birthdate)
    if "birthdate_typo" in variants:
        birthdate = birthdate_typo(rng, original.birthdate)
    doctor = rng.randrange(doctors) if "other_doctor" in variants else original.doctor
    email = original.email if rng.random() < 0.5 else None
    if email and rng.random() < 0.3:
        email = "".join(rng.choice(string.ascii_lowercase) for _ in range(8)) + "@example.net"
    return SyntheticPatient(
        patient_id, original.entity_id, first, last, birthdate, original.sex, email,
        doctor, doctor // 2,
    )  # fmt: skip
