"""Courses, products, instructions (orders), jaws, treatment plans and projects.

Instructions are planned per patient (first order soon after enrolment, refinements and
replacements months later), then numbered in time order as Django's serial ids would be.
Jaws, plans and projects are numbered while walking the instructions in id order, so each
instruction's children have ascending ids too.
"""

from __future__ import annotations

import json
import random
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate

from include.sandbox.common import DAY, HOUR, SPAN, DefectLog, at, clamp, stream
from include.sandbox.defects import rate
from include.sandbox.people import Patients
from include.sandbox.text import clinical_text, mojibake_text, sentence
from include.sandbox.volumes import apportion, defect_count, sample_indices, shuffled_labels

#: dispatch_course: the documented ids (§1a) plus one clinic-specific course.
COURSES: tuple[tuple[int, str, int | None, str | None], ...] = (
    (1, "Main", 1, None),
    (2, "Refinement", 2, None),
    (3, "Replacement", 3, None),
    (4, "Any", 4, None),
    (7, "Invoice", 7, None),
    (8, "Merchandise", 8, None),
    (12, "Clinic Retainer Program", None, '{"trays": 4, "retainer": true}'),
)
CUSTOM_COURSE = 12
#: Courses that are not treatment orders: no jaws, plans or projects.
NON_TREATMENT = (7, 8)

#: dispatch_product: (id, name, free, deleted, type, course_id).
PRODUCTS: tuple[tuple[int, str, bool, bool, int, int | None], ...] = (
    (1, "Full Arch Aligners", False, False, 1, 1),
    (2, "Upper Aligners", False, False, 1, 1),
    (3, "Lower Aligners", False, False, 1, 1),
    (4, "Refinement Aligners", False, False, 2, 2),
    (5, "Replacement Tray", False, False, 3, 3),
    (6, "Retainer", False, False, 4, 4),
    (7, "Invoice Item", False, False, 7, 7),
    (8, "Aligner Case", True, False, 8, 8),
    (9, "Chewies", False, False, 8, 8),
    (10, "Legacy Bracket Kit", False, True, 1, None),
)
_JAW_PRODUCT = {1: (1, 2, 3), 2: (4,), 3: (5,), 4: (6,), CUSTOM_COURSE: (6,)}
#: Course of a patient's first and later orders. Jaws (1.74 per order, §1c) leave room for
#: only ~8% of orders without a treatment course (invoice, merchandise).
_FIRST_COURSE = {1: 88, 4: 4, 7: 2, 8: 1, CUSTOM_COURSE: 1, 3: 4}
_LATER_COURSE = {2: 55, 3: 25, 1: 5, 7: 6, 8: 4, 4: 3, CUSTOM_COURSE: 2}
_PRICE = {1: (600, 997), 2: (0, 400), 3: (100, 300), 4: (200, 600), 7: (50, 997), 8: (20, 200)}
_REASONS = ("Lost tray", "Broken tray", "Does not fit", "Patient moved", None)


@dataclass
class Orders:
    """Skeleton of instructions and their jaws, plans and projects.

    Indexes are positions in id order; ids of plans and projects are position + 1.
    """

    ids: list[int]
    patient: list[int]
    time: list[int]
    course: list[int]
    status: list[int]
    deleted: list[bool]
    upper: list[int | None]
    lower: list[int | None]
    jaws: list[tuple[int, int, str]]
    plan_first: list[int]
    plan_count: list[int]
    plan_instruction: list[int]
    plan_time: list[int]
    plan_project: list[int]
    project_time: list[int]


def plan_orders(
    seed: int, volumes: dict[str, int], patients: Patients, defects: DefectLog
) -> Orders:
    """Instructions with course, status, jaws, plans and (shared) projects."""
    rng = stream(seed, "dispatch_instruction.plan")
    total = volumes["dispatch_instruction"]
    # Nearly every patient orders when enrolled; follow-up orders (refinements,
    # replacements) come 45 days or more after the patient's previous one. A follow-up that
    # would fall after the window is not placed, so late patients have fewer orders and
    # orders do not pile up at the end (2025 holds ~16% of them: ids from ~21k, §1a).
    count = len(patients.ids)
    enrolled = sample_indices(rng, range(count), min(total, round(count * 0.97)))
    last = {p: clamp(patients.submitted[p] + rng.randint(HOUR, 3 * DAY)) for p in enrolled}
    events = [(last[p], p, 0) for p in enrolled]
    weights = list(accumulate(rng.lognormvariate(0, 0.8) for _ in enrolled))
    placed = Counter(enrolled)
    attempts = 0
    while len(events) < total and attempts < 100 * total:
        attempts += 1
        p = enrolled[bisect_left(weights, rng.random() * weights[-1])]
        t = last[p] + 45 * DAY + int(rng.expovariate(1 / (240 * DAY)))
        if t < SPAN:
            events.append((t, p, placed[p]))
            placed[p] += 1
            last[p] = t
    events.sort()
    total = len(events)
    ids, next_id = [], 1
    for _ in events:
        ids.append(next_id)
        next_id += 1 if rng.random() < 0.995 else 2
    time = [e[0] for e in events]
    course = [_pick(rng, _LATER_COURSE if e[2] else _FIRST_COURSE) for e in events]
    status = _statuses(rng, time, ids, defects)
    deleted = [False] * total
    for i in sample_indices(rng, range(total), defect_count(total, rate("order_soft_deleted"))):
        deleted[i] = True
        defects.add("order_soft_deleted", "dispatch_instruction", ids[i])
    orders = Orders(
        ids, [e[1] for e in events], time, course, status, deleted,
        [None] * total, [None] * total, [], [0] * total, [0] * total, [], [], [], [],
    )  # fmt: skip
    _plan_jaws(rng, volumes["dispatch_jaw"], orders, defects)
    _plan_plans(rng, volumes["dispatch_plan"], volumes["dispatch_project"], orders, defects)
    return orders


def _pick(rng: random.Random, weights: dict[int, int]) -> int:
    return rng.choices(list(weights), list(weights.values()))[0]


def _statuses(rng: random.Random, time: list[int], ids: list[int], defects: DefectLog) -> list[int]:
    """Status codes in the 2025 mix (4 = 83%, 1 = 15%, 2 = 2%), open orders the newest."""
    total = len(time)
    counts = apportion(total, {4: 0.81, 1: 0.14, 2: 0.023, 0: 0.027})
    status = [4] * total
    newest_first = sorted(
        range(total), key=lambda i: time[i] + rng.gauss(0, 60 * DAY), reverse=True
    )
    for i in newest_first[: counts[1]]:
        status[i] = 1
    for i in newest_first[counts[1] : counts[1] + counts[2]]:
        status[i] = 2
    rest = sorted(newest_first[counts[1] + counts[2] :])
    for i in sample_indices(rng, rest, counts[0]):
        status[i] = 0
    for i in sample_indices(rng, range(total), defect_count(total, rate("order_status_unknown"))):
        status[i] = rng.choice((3, 5, 9))
        defects.add("order_status_unknown", "dispatch_instruction", ids[i])
    return status


def _plan_jaws(rng: random.Random, jaw_total: int, orders: Orders, defects: DefectLog) -> None:
    """Upper/lower jaw ids per instruction, plus jaws no instruction references (§1c #20)."""
    unreferenced = defect_count(jaw_total, rate("jaw_unreferenced"))
    referenced = jaw_total - unreferenced
    eligible = [i for i, c in enumerate(orders.course) if c not in NON_TREATMENT]
    both = min(max(referenced - len(eligible), 0), len(eligible))
    single = min(len(eligible) - both, referenced - 2 * both)
    shapes = (
        ["both"] * both + ["upper"] * (single * 3 // 5) + ["lower"] * (single - single * 3 // 5)
    )
    shapes += ["none"] * (len(eligible) - len(shapes))
    rng.shuffle(shapes)
    shape_of = dict(zip(eligible, shapes, strict=True))
    orphans_before = Counter(rng.choices(range(len(orders.ids)), k=unreferenced))
    jaw_id = 0
    for i in range(len(orders.ids)):
        for _ in range(orphans_before.get(i, 0)):
            jaw_id += 1
            orders.jaws.append((jaw_id, i, "orphan"))
            defects.add("jaw_unreferenced", "dispatch_jaw", jaw_id)
        shape = shape_of.get(i, "none")
        for side in ("upper", "lower"):
            if shape in (side, "both"):
                jaw_id += 1
                orders.jaws.append((jaw_id, i, side))
                (orders.upper if side == "upper" else orders.lower)[i] = jaw_id


def _plan_plans(
    rng: random.Random, plan_total: int, project_total: int, orders: Orders, defects: DefectLog
) -> None:
    """Plans per treatment instruction and the projects they point at (some shared)."""
    eligible = [i for i, c in enumerate(orders.course) if c not in NON_TREATMENT] or [0]
    weights = list(accumulate(rng.lognormvariate(0, 0.5) for _ in eligible))
    per_instruction = Counter(rng.choices(eligible, cum_weights=weights, k=plan_total))
    for i in range(len(orders.ids)):
        orders.plan_first[i] = len(orders.plan_instruction) + 1
        orders.plan_count[i] = per_instruction.get(i, 0)
        t = orders.time[i]
        for _ in range(orders.plan_count[i]):
            t = clamp(t + rng.randint(2 * DAY, 30 * DAY))
            orders.plan_instruction.append(i)
            orders.plan_time.append(t)
    # Projects no plan points at, and plans (revisions) that reuse the previous plan's project.
    orphan_projects = round(project_total * 0.005)
    revisions = [
        p
        for p in range(plan_total)
        if p and orders.plan_instruction[p] == orders.plan_instruction[p - 1]
    ]
    shared = set(sample_indices(rng, revisions, plan_total - project_total + orphan_projects))
    orphans_before = Counter(rng.choices(range(plan_total), k=orphan_projects))
    logged: set[int] = set()
    for p in range(plan_total):
        for _ in range(orphans_before.get(p, 0)):
            orders.project_time.append(clamp(orders.plan_time[p] - rng.randint(HOUR, 10 * DAY)))
        if p in shared:
            project_id = orders.plan_project[p - 1]
            if project_id not in logged:
                logged.add(project_id)
                defects.add("project_shared", "dispatch_project", project_id)
        else:
            orders.project_time.append(orders.plan_time[p])
            project_id = len(orders.project_time)
        orders.plan_project.append(project_id)


def course_rows() -> Iterator[tuple[int, str, int | None, str | None]]:
    """dispatch_course: fixed reference rows."""
    yield from COURSES


def product_rows() -> Iterator[tuple[object, ...]]:
    """dispatch_product: a small fixed catalogue (10 products in the target, §1c)."""
    for product_id, name, free, deleted, kind, course_id in PRODUCTS:
        yield product_id, name, f"{name} (sandbox)", free, deleted, None, kind, False, course_id


def jaw_rows(seed: int, orders: Orders) -> Iterator[tuple[object, ...]]:
    """dispatch_jaw: teeth bit strings, replacement reason, product."""
    rng = stream(seed, "dispatch_jaw")
    for jaw_id, i, _side in orders.jaws:
        course = orders.course[i]
        yield (
            jaw_id,
            _teeth(rng, 0.15),
            _teeth(rng, 0.03),
            rng.choice(_REASONS) if course == 3 else None,
            rng.choice(_JAW_PRODUCT.get(course, (1,))),
            rng.random() < 0.1,
        )


def _teeth(rng: random.Random, share: float) -> str:
    return "".join("1" if rng.random() < share else "0" for _ in range(16))


def instruction_rows(
    seed: int, orders: Orders, patients: Patients, defects: DefectLog
) -> Iterator[tuple[object, ...]]:
    """dispatch_instruction rows with text, JSON and status defects."""
    rng = stream(seed, "dispatch_instruction")
    total = len(orders.ids)
    bad_exports = set(
        sample_indices(rng, range(total), defect_count(total, rate("exports_invalid_json")))
    )
    garbled = set(sample_indices(rng, range(total), defect_count(total, rate("text_mojibake"))))
    clean = [i for i in range(total) if i not in garbled]
    foreign = set(sample_indices(rng, clean, defect_count(total, 0.002)))
    for i, instruction_id in enumerate(orders.ids):
        p = orders.patient[i]
        course = orders.course[i]
        locale = patients.text_locale(p)
        notes = clinical_text(rng, rng.randint(1, 3)) if rng.random() < 0.7 else ""
        if i in garbled:
            notes = mojibake_text(rng)
            defects.add("text_mojibake", "dispatch_instruction", instruction_id)
        elif i in foreign or locale != "en" and rng.random() < rate("text_multilingual"):
            notes = clinical_text(rng, rng.randint(1, 2), locale if locale != "en" else "ja")
            defects.add("text_multilingual", "dispatch_instruction", instruction_id)
        exports = (
            "{}" if rng.random() < 0.7 else json.dumps({"stl": True, "trays": rng.randint(5, 40)})
        )
        if i in bad_exports:
            exports = rng.choice(('{"stl": true,', "{'upper': 1}", "exported", '{"trays": 12}}'))
            defects.add("exports_invalid_json", "dispatch_instruction", instruction_id)
        low, high = _PRICE.get(course, (0, 600))
        submitted = orders.time[i]
        yield (
            instruction_id,
            patients.ids[p],
            course,
            orders.status[i],
            at(submitted),
            at(clamp(submitted + rng.randint(0, 120 * DAY))),
            notes,
            sentence(rng) if rng.random() < 0.5 else "",
            sentence(rng) if rng.random() < 0.3 else "",
            sentence(rng) if rng.random() < 0.3 else "",
            "Scan includes bite registration." if rng.random() < 0.1 else "",
            exports,
            Decimal(rng.randint(low * 100, high * 100)) / 100,
            rng.choices((1, None, 3), (64, 22.5, 13.5))[0],
            rng.choice((None, None, 2, 10)),
            rng.random() < 0.40,
            rng.random() < 0.46,
            rng.random() < 0.1755,
            orders.deleted[i],
            rng.randint(0, 5) if rng.random() < 0.5 else None,
            orders.upper[i],
            orders.lower[i],
            patients.suffix[p],
        )


def project_rows(seed: int, orders: Orders, technicians: list[int]) -> Iterator[tuple[object, ...]]:
    """dispatch_project: mostly defaults (§1c #25): empty names, status 0, no creator."""
    rng = stream(seed, "dispatch_project")
    types = shuffled_labels(rng, len(orders.project_time), {3: 0.52, 0: 0.25, 10: 0.13, 11: 0.10})
    for index, created in enumerate(orders.project_time):
        yield (
            index + 1,
            uuid.UUID(int=rng.getrandbits(128), version=4),
            "" if rng.random() < 0.6 else str(rng.randint(100_000, 999_999)),
            rng.randint(100_000, 50_000_000),
            types[index],
            2 if rng.random() < 0.0002 else 0,
            rng.choice(technicians) if rng.random() < 0.1 else None,
            at(created),
            rng.random() < 0.05,
        )


def plan_rows(seed: int, orders: Orders) -> Iterator[tuple[object, ...]]:
    """dispatch_plan: numbered revisions of an instruction, each tied to a project."""
    rng = stream(seed, "dispatch_plan")
    for index, i in enumerate(orders.plan_instruction):
        number = index + 2 - orders.plan_first[i]
        yield (
            index + 1,
            orders.ids[i],
            orders.plan_project[index],
            sentence(rng) if rng.random() < 0.3 else None,
            number,
            rng.choice((f"TP{number}", "", None)),
            number == 1,
        )
