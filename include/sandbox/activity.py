"""Messages (dispatch_record), files and their attachments, plan comments, order states.

Records are numbered in time order and point at their target through Django's generic
relation (``target_type_id`` + ``target_id``); the content-type ids come from the seed's
layout, never from constants. Files are written per instruction (its uploads, then its
plans' files) interleaved in time with message attachments, so ids grow with created_at
and each instruction's files have consecutive ids, which the task builder relies on.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import uuid
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from include.sandbox.common import (
    DAY,
    HOUR,
    DefectLog,
    at,
    clamp,
    sorted_growth_times,
    stream,
    year_of,
)
from include.sandbox.defects import rate
from include.sandbox.media import media_bytes, media_relative_path
from include.sandbox.orders import Orders
from include.sandbox.people import GROUPS, Patients
from include.sandbox.text import clinical_text, mojibake_text
from include.sandbox.volumes import apportion, defect_count, sample_indices, shuffled_labels

#: dispatch_record.type shares (§1a: 5 ≈ 52%, 6 ≈ 42%, 8 ≈ 3.8%, 3 ≈ 2.1%); None = NULL
#: (13 rows at scale 1) and -1 = an undocumented code (a few rows).
_RECORD_TYPES: dict[int | None, float] = {
    5: 0.52,
    6: 0.42,
    8: 0.038,
    3: 0.021,
    None: 13 / 70700,
    -1: 5 / 70700,
}
#: Generic-relation target mix; the last four are the defects of §1c #15/#16.
_TARGETS: dict[str, float] = {
    "patient": 0.80,
    "user": 0.12,
    "instruction": 0.04,
    "project": 0.02,
    "record_target_unknown_model": rate("record_target_unknown_model"),
    "record_target_namesake_model": rate("record_target_namesake_model"),
    "record_target_null_type": rate("record_target_null_type"),
    "record_target_dangling": rate("record_target_dangling"),
}
#: dispatch_file.type -> (extension, name stem); meanings inferred in §1a dispatch_file.
_FILE_TYPES: dict[int, tuple[str, str]] = {
    1: ("jpg", "IMG_{n:04d}"),
    2: ("stl", "{n}_scan_{jaw}"),
    3: ("jpg", "intraoral_{n}"),
    4: ("png", "photo_{n}"),
    5: ("jpg", "xray_{n}"),
    6: ("stl", "{n}_shell_occlusion_{jaw}"),
    7: ("pdf", "treatment_plan_{n}"),
    8: ("zip", "setup_{n}"),
    9: ("stl", "scan_{n}_{jaw}"),
    10: ("pdf", "prescription_{n}"),
    11: ("zip", "impressions_{n}"),
    12: ("dcm", "cbct_{n}"),
    13: ("pdf", "document_{n}"),
}
_UPLOAD_TYPES = {1: 25, 3: 10, 4: 5, 5: 8, 2: 20, 9: 12, 10: 8, 11: 4, 12: 3, 13: 5}
_PLAN_TYPES = {6: 60, 7: 25, 8: 15}
_ATTACHMENT_TYPES = {1: 50, 4: 20, 13: 20, 7: 10}
#: dispatch_state rows per year (§1a, migrated subset; 2025 extrapolated from Aug).
_STATES_PER_YEAR = {
    2018: 17,
    2019: 40,
    2020: 53,
    2021: 229,
    2022: 653,
    2023: 663,
    2024: 1745,
    2025: 1440,
}
#: Share of dispatch_file rows that get bytes in the media store.
MEDIA_SHARE = 0.02


@dataclass
class Actors:
    """User ids by the part they play in activity rows."""

    technicians: list[int]
    staff: list[int]
    doctors: list[int]
    everyone: list[int]
    patient_users: list[int]


@dataclass
class FileIndex:
    """What the file stream leaves behind for attachments, tasks and the media manifest."""

    first: list[int]
    count: list[int]
    attachments: list[tuple[int, int]] = field(default_factory=list)
    manifest: list[tuple[int, str, int, str, bool]] = field(default_factory=list)


def record_rows(
    seed: int,
    total: int,
    attachment_total: int,
    content_types: dict[tuple[str, str], int],
    actors: Actors,
    patients: Patients,
    orders: Orders,
    defects: DefectLog,
    attachments: list[tuple[int, int]],
) -> Iterator[tuple[object, ...]]:
    """dispatch_record rows in time order; fills ``attachments`` with (record_id, time)."""
    rng = stream(seed, "dispatch_record")
    times = sorted_growth_times(rng, total)
    targets = shuffled_labels(
        rng,
        total,
        _TARGETS,
        {
            "record_target_unknown_model": 1,
            "record_target_namesake_model": 1,
            "record_target_null_type": 1,
            "record_target_dangling": 1,
        },
    )
    types = shuffled_labels(rng, total, _RECORD_TYPES, {None: 1, -1: 1})
    attached = set(sample_indices(rng, range(total), attachment_total))
    garbled = set(sample_indices(rng, range(total), defect_count(total, rate("text_mojibake"))))
    clean = [i for i in range(total) if i not in garbled]
    foreign = set(sample_indices(rng, clean, defect_count(total, 0.002)))
    project_order = sorted(range(len(orders.project_time)), key=orders.project_time.__getitem__)
    project_times = [orders.project_time[p] for p in project_order]
    stale = [content_types[("sessions", "session")], content_types[("dispatch", "case")]]
    stale.append(content_types[("dispatch", "message")])
    ct_patient = content_types[("dispatch", "patient")]
    ct_instruction = content_types[("dispatch", "instruction")]
    group_ids = [g for g, _ in GROUPS]
    lab = actors.technicians + actors.staff
    correspondents = actors.staff + actors.doctors
    for i, t in enumerate(times):
        record_id = i + 1
        kind = targets[i]
        locale = "en"
        author: int | None = rng.choice(lab)
        if kind == "patient":
            p = _recent(rng, bisect_right(patients.submitted, t))
            target_type: int | None = ct_patient
            target_id = patients.ids[p]
            locale = patients.text_locale(p)
            roll = rng.random()
            if roll < 0.45 and patients.doctor[p] is not None:
                author = patients.doctor[p]
            elif roll > 0.85:
                author = actors.patient_users[p]
        elif kind == "user":
            target_type, target_id = content_types[("auth", "user")], rng.choice(actors.everyone)
            author = rng.choice(correspondents)
        elif kind == "instruction":
            o = _recent(rng, bisect_right(orders.time, t))
            target_type, target_id = ct_instruction, orders.ids[o]
            locale = patients.text_locale(orders.patient[o])
        elif kind == "project":
            target_type = content_types[("dispatch", "project")]
            target_id = project_order[_recent(rng, bisect_right(project_times, t))] + 1
        elif kind == "record_target_unknown_model":
            target_type, target_id = rng.choice(stale), rng.randint(1, 50_000)
        elif kind == "record_target_namesake_model":
            if rng.random() < 0.5:
                target_type, target_id = (
                    content_types[("users", "user")],
                    rng.choice(actors.everyone),
                )
            else:
                target_type = content_types[("projects", "project")]
                target_id = rng.randint(1, len(project_order))
        elif kind == "record_target_null_type":
            target_type, target_id = None, rng.choice(patients.ids)
        else:
            if rng.random() < 0.5:
                target_type, target_id = ct_patient, patients.ids[-1] + rng.randint(1, 5_000)
            else:
                target_type, target_id = ct_instruction, orders.ids[-1] + rng.randint(1, 5_000)
        if kind.startswith("record_target"):
            defects.add(kind, "dispatch_record", record_id)
        record_type = types[i]
        if record_type is None or record_type == -1:
            record_type = None if record_type is None else rng.choice((1, 7, 99))
            defects.add("record_type_unknown", "dispatch_record", record_id)
        text = _message(rng, i, locale, foreign, garbled, defects, "dispatch_record", record_id)
        if i in attached:
            attachments.append((record_id, t))
        yield (
            record_id,
            target_id,
            record_type,
            at(t),
            text,
            None if rng.random() < 0.01 else author,
            target_type,
            rng.choice(group_ids) if rng.random() < 0.2 else None,
            rng.choice((None, True, True, False)),
        )


def _recent(rng: random.Random, eligible: int) -> int:
    """An index below ``eligible`` (at least 0), biased towards recent (higher) ones."""
    return min(int(max(eligible, 1) * rng.random() ** 0.5), max(eligible, 1) - 1)


def _message(
    rng: random.Random,
    index: int,
    locale: str,
    foreign: set[int],
    garbled: set[int],
    defects: DefectLog,
    table: str,
    row_id: int,
) -> str:
    """Clinical text of a message: English, native for JP/TH patients, or garbled."""
    if index in garbled:
        defects.add("text_mojibake", table, row_id)
        return mojibake_text(rng)
    if index in foreign or locale != "en" and rng.random() < rate("text_multilingual"):
        defects.add("text_multilingual", table, row_id)
        return clinical_text(rng, rng.randint(1, 3), locale if locale != "en" else "ja")
    sentences = rng.randint(20, 40) if rng.random() < 0.01 else rng.randint(1, 5)
    return clinical_text(rng, sentences)


def file_rows(
    seed: int,
    total: int,
    orders: Orders,
    attachments: list[tuple[int, int]],
    media_dir: Path | None,
    defects: DefectLog,
    index: FileIndex,
) -> Iterator[tuple[object, ...]]:
    """dispatch_file rows; writes media bytes and fills ``index`` (ranges, links, manifest)."""
    rng = stream(seed, "dispatch_file")
    instructions = len(orders.ids)
    uploads_total = round(total * 0.5)
    plan_files_total = max(total - len(attachments) - uploads_total, 0)
    uploads = [0] * instructions
    for i in rng.choices(range(instructions), k=uploads_total):
        uploads[i] += 1
    plan_files = [0] * instructions
    plans = orders.plan_instruction or [0]
    for p in rng.choices(range(len(plans)), k=plan_files_total):
        plan_files[plans[p]] += 1
    rows_total = uploads_total + plan_files_total + len(attachments)
    double = set(
        sample_indices(
            rng, range(rows_total), defect_count(rows_total, rate("file_double_extension"))
        )
    )
    media = sample_indices(rng, range(rows_total), defect_count(rows_total, MEDIA_SHARE))
    missing = set(sample_indices(rng, media, defect_count(len(media), rate("file_missing_media"))))
    with_media = set(media)

    chunks = [(orders.time[i], 0, i) for i in range(instructions) if uploads[i] + plan_files[i]]
    messages = [(t, 1, k) for k, (_, t) in enumerate(attachments)]
    file_id = 0
    for t, source, position in heapq.merge(chunks, messages):
        specs: list[tuple[int, int, int | None]]
        if source == 1:
            specs = [
                (t, rng.choices(list(_ATTACHMENT_TYPES), list(_ATTACHMENT_TYPES.values()))[0], None)
            ]
        else:
            index.first[position] = file_id + 1
            index.count[position] = uploads[position] + plan_files[position]
            instruction_id = orders.ids[position]
            specs = [
                (clamp(t + rng.randint(0, 2 * HOUR)), _pick(rng, _UPLOAD_TYPES), instruction_id)
                for _ in range(uploads[position])
            ]
            first_plan = orders.plan_first[position] - 1
            for _ in range(plan_files[position]):
                plan = first_plan + rng.randrange(max(orders.plan_count[position], 1))
                created = orders.plan_time[plan] if orders.plan_count[position] else t
                specs.append((created, _pick(rng, _PLAN_TYPES), None))
        for created, file_type, owner in specs:
            row = file_id
            file_id += 1
            if row in double:
                file_type = 6 if file_type in _PLAN_TYPES else 2
            ext, stem = _FILE_TYPES[file_type]
            name = stem.format(n=rng.randint(1_000, 200_000_000), jaw=rng.choice("ul"))
            if row in double:
                name += ".stl"
                defects.add("file_double_extension", "dispatch_file", file_id)
            uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            size = rng.randint(20_000, 40_000_000)
            if row in with_media:
                size = _media(
                    seed, media_dir, file_id, uid, name, ext, row in missing, defects, index
                )
            record_id = None
            if source == 1:
                record_id = attachments[position][0]
                index.attachments.append((record_id, file_id))
            yield (
                file_id,
                uid,
                name,
                ext,
                size,
                file_type,
                owner,
                at(created),
                "uploaded from the clinic portal" if rng.random() < 0.05 else None,
                rng.choice((1, 2, 3, 4)) if rng.random() < 0.1 else None,
                '{"units": "mm"}' if ext == "stl" and rng.random() < 0.2 else None,
                record_id,
                rng.choices((1, 0, None), (80, 15, 5))[0],
            )


def _pick(rng: random.Random, weights: dict[int, int]) -> int:
    return rng.choices(list(weights), list(weights.values()))[0]


def _media(
    seed: int,
    media_dir: Path | None,
    file_id: int,
    uid: str,
    name: str,
    ext: str,
    missing: bool,
    defects: DefectLog,
    index: FileIndex,
) -> int:
    """Write (or, for a missing-media defect, skip) one file's bytes; return their size."""
    content = media_bytes(ext, random.Random(f"sandbox:{seed}:media:{file_id}"))
    relative = media_relative_path(uid, name, ext)
    index.manifest.append(
        (file_id, relative, len(content), hashlib.sha256(content).hexdigest(), missing)
    )
    if missing:
        defects.add("file_missing_media", "dispatch_file", file_id)
    elif media_dir is not None:
        path = media_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return len(content)


def attachment_rows(index: FileIndex) -> Iterator[tuple[int, int, int]]:
    """dispatch_record_attachments: one row per attached file."""
    for row_id, (record_id, file_id) in enumerate(index.attachments, start=1):
        yield row_id, record_id, file_id


def comment_rows(
    seed: int, total: int, orders: Orders, patients: Patients, actors: Actors, defects: DefectLog
) -> Iterator[tuple[object, ...]]:
    """dispatch_comment: discussion of treatment plans by doctors and technicians."""
    rng = stream(seed, "dispatch_comment")
    plans = rng.choices(range(len(orders.plan_instruction)), k=total)
    planned = sorted(
        (clamp(orders.plan_time[p] + int(rng.expovariate(1 / (20 * DAY)))), p) for p in plans
    )
    garbled = set(sample_indices(rng, range(total), defect_count(total, rate("text_mojibake"))))
    clean = [i for i in range(total) if i not in garbled]
    foreign = set(sample_indices(rng, clean, defect_count(total, 0.002)))
    for i, (t, p) in enumerate(planned):
        comment_id = i + 1
        patient = orders.patient[orders.plan_instruction[p]]
        doctor = patients.doctor[patient]
        author = (
            doctor if doctor is not None and rng.random() < 0.6 else rng.choice(actors.technicians)
        )
        text = _message(
            rng,
            i,
            patients.text_locale(patient),
            foreign,
            garbled,
            defects,
            "dispatch_comment",
            comment_id,
        )
        yield comment_id, p + 1, author, text, at(t)


def state_rows(
    seed: int, total: int, orders: Orders, actors: Actors, defects: DefectLog
) -> Iterator[tuple[object, ...]]:
    """dispatch_state: status 11/12 toggles, concentrated on recent orders (§1a)."""
    rng = stream(seed, "dispatch_state")
    years = [year_of(t) for t in orders.time]
    per_year = {year: years.count(year) for year in set(years)}
    weights = list(accumulate(_STATES_PER_YEAR.get(y, 1) / per_year[y] for y in years))
    chosen = rng.choices(range(len(orders.ids)), cum_weights=weights, k=total)
    planned = sorted((clamp(orders.time[i] + rng.randint(HOUR, 60 * DAY)), i) for i in chosen)
    counts = apportion(total, {11: 2599, 12: 2152})
    statuses = [11] * counts[11] + [12] * counts[12]
    rng.shuffle(statuses)
    unknown = set(
        sample_indices(rng, range(total), defect_count(total, rate("state_status_unknown")))
    )
    orphan = set(
        sample_indices(rng, range(total), defect_count(total, rate("state_no_instruction")))
    )
    for k, (t, i) in enumerate(planned):
        state_id = k + 1
        status = statuses[k]
        if k in unknown:
            status = rng.choice((13, 15, 20))
            defects.add("state_status_unknown", "dispatch_state", state_id)
        instruction_id: int | None = orders.ids[i]
        if k in orphan:
            instruction_id = None
            defects.add("state_no_instruction", "dispatch_state", state_id)
        roll = rng.random()
        actor = (
            rng.choice(actors.technicians)
            if roll < 0.9
            else rng.choice(actors.staff)
            if roll < 0.98
            else None
        )
        yield state_id, status, rng.random() < 0.75, at(t), actor, instruction_id
