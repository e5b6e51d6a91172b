"""Row counts of the sandbox at a given scale, and exact apportionment of counts to labels.

Scale 1.0 reproduces the production volumes of ``legacy-system.md`` §1c (the Oct/Nov 2025
counts). Smaller scales keep the proportions; each count has a floor so that every
documented defect still fits at least once, which is what the migration tests need.
Apportionment is exact (largest remainder), not random, so a share of 2% of 50 rows is
always 1 row and the proportions tests hold at small scales.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Volume:
    """Production row count of one scaled quantity and its floor at small scales.

    Attributes:
        production: the count at scale 1.0.
        minimum: the smallest count at any scale (room for every defect of the table).
        source: where the production count comes from (legacy-system.md section).
    """

    production: int
    minimum: int
    source: str


#: Users by role; ``auth_user`` is their sum (9,839 at scale 1.0).
ROLE_VOLUMES: dict[str, Volume] = {
    "patient": Volume(8_488, 24, "§1c dispatch_patient (Nov 2025), one auth_user each"),
    "doctor": Volume(1_181, 8, "§1b #4 / §1c #2: 1,181 users with dispatch_doctorsetting"),
    "technician": Volume(85, 2, "§1b #5: group 11, 85 technicians in the target"),
    "admin": Volume(24, 1, "§1b #3: 24 'admin' users"),
    "master": Volume(12, 1, "§1b: masters (count undocumented)"),
    "staff": Volume(49, 1, "remainder up to 9,839 auth_user rows (sales, support, shipping)"),
}

#: Scaled tables (and the valid-office subset). Reference tables do not scale.
TABLE_VOLUMES: dict[str, Volume] = {
    "dispatch_office": Volume(897, 8, "§1c: 896-897 offices (Nov 2025)"),
    "dispatch_office.valid": Volume(546, 4, "§1c #9: 546 valid offices"),
    "dispatch_office_doctors": Volume(438, 2, "§1a: 438 rows (Jan 2025)"),
    "dispatch_instruction": Volume(25_000, 24, "§1c: 25,000-25,012 (Oct 2025)"),
    "dispatch_jaw": Volume(43_458, 40, "§1c: 43,458 (Oct 2025)"),
    "dispatch_project": Volume(67_000, 24, "§1c: 66,904 (Jan 2025) -> ~67k"),
    "dispatch_plan": Volume(68_000, 30, "§1c: ~67,782"),
    "dispatch_comment": Volume(16_300, 8, "§1c: 16,312 (Nov 2025)"),
    "dispatch_record": Volume(70_700, 60, "§1c: 70,684-70,742 (Oct 2025)"),
    "dispatch_record_attachments": Volume(8_700, 4, "§1c: 8,703 (Oct 2025)"),
    "dispatch_state": Volume(5_500, 8, "§1c: 5,464-5,547 (Oct 2025)"),
    "dispatch_file": Volume(330_000, 120, "§1c: 325,446-327,771 (Oct-Nov 2025)"),
    "dispatch_task": Volume(1_000_000, 200, "§1c: 768,962 (Aug) -> 953,224 in the target (Nov)"),
}


def scaled(volume: Volume, scale: float) -> int:
    """The count of ``volume`` at ``scale``: proportional, never below its floor."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return max(volume.minimum, round(volume.production * scale))


def scaled_volumes(scale: float) -> dict[str, int]:
    """Every scaled count at ``scale``, keyed by role (``users.<role>``) or table name."""
    counts = {f"users.{role}": scaled(v, scale) for role, v in ROLE_VOLUMES.items()}
    counts.update({name: scaled(v, scale) for name, v in TABLE_VOLUMES.items()})
    counts["auth_user"] = sum(counts[f"users.{role}"] for role in ROLE_VOLUMES)
    counts["dispatch_patient"] = counts["users.patient"]
    counts["dispatch_doctorsetting"] = counts["users.doctor"]
    # Plans must outnumber projects so that some plans share one (§1a dispatch_plan).
    counts["dispatch_plan"] = max(counts["dispatch_plan"], counts["dispatch_project"] + 2)
    counts["dispatch_record_attachments"] = min(
        counts["dispatch_record_attachments"], counts["dispatch_record"] // 2
    )
    counts["dispatch_office.valid"] = min(
        counts["dispatch_office.valid"], counts["dispatch_office"]
    )
    return counts


def defect_count(population: int, rate: float, minimum: int = 1) -> int:
    """How many of ``population`` rows get a defect of ``rate``: at least ``minimum``."""
    return min(population, max(minimum, round(population * rate)))


def apportion(
    total: int, shares: Mapping[K, float], minimum: Mapping[K, int] | None = None
) -> dict[K, int]:
    """Split ``total`` among the keys of ``shares`` in proportion, honouring minimums.

    Largest-remainder method, deterministic (ties go to the earlier key), so small tables
    keep the documented proportions as closely as whole rows allow.

    Raises:
        ValueError: the minimums add up to more than ``total``.
    """
    floors = dict(minimum or {})
    if sum(floors.values()) > total:
        raise ValueError(f"minimums {floors} exceed the total {total}")
    weight = sum(shares.values())
    quota = {key: total * share / weight for key, share in shares.items()}
    counts = {key: max(floors.get(key, 0), int(q)) for key, q in quota.items()}
    order = list(shares)
    while sum(counts.values()) < total:
        key = max(order, key=lambda k: quota[k] - counts[k])
        counts[key] += 1
    while sum(counts.values()) > total:
        reducible = [k for k in order if counts[k] > floors.get(k, 0)]
        key = min(reducible, key=lambda k: quota[k] - counts[k])
        counts[key] -= 1
    return counts


def shuffled_labels(
    rng: random.Random,
    total: int,
    shares: Mapping[K, float],
    minimum: Mapping[K, int] | None = None,
) -> list[K]:
    """``total`` labels in the exact proportions of :func:`apportion`, in random order."""
    labels = [key for key, count in apportion(total, shares, minimum).items() for _ in range(count)]
    rng.shuffle(labels)
    return labels


def sample_indices(rng: random.Random, candidates: range | list[int], count: int) -> list[int]:
    """``count`` distinct members of ``candidates`` in ascending order (all if fewer)."""
    return sorted(rng.sample(candidates, min(count, len(candidates))))
