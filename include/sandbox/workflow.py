"""Workflow reference data (categories, templates, predecessors) and per-order tasks.

The reference tables do not scale and do not depend on the seed: production has 44
categories, 169 templates and 191 predecessor edges (§1a, §1c). Templates form one
workflow per course; tasks instantiate the workflow of their instruction's course (about
40 per order, ~1M at scale 1.0), split per jaw where the template says so.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from include.sandbox.activity import Actors, FileIndex
from include.sandbox.common import HOUR, DefectLog, at, clamp, stream
from include.sandbox.orders import CUSTOM_COURSE, Orders
from include.sandbox.people import Patients
from include.sandbox.text import sentence

#: Top-level categories and their children (44 rows in all, §1c target counts).
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Intake", ("Submission", "Records Review", "Scan Review", "Photos", "Prescription")),
    ("Planning", ("Setup", "Staging", "IPR Planning", "Attachments", "Doctor Review")),
    (
        "Design",
        ("Segmentation", "Model Prep", "Aligner Design", "Retainer Design", "Bracket Design"),
    ),
    ("Manufacturing", ("Printing", "Thermoforming", "Trimming", "Polishing", "Laser Marking")),
    ("Quality", ("Inspection", "Fit Check", "Final QC", "Rework")),
    ("Shipping", ("Packing", "Labels", "Dispatch", "Tracking")),
    ("Billing", ("Invoicing", "Payments", "Credits", "Refunds")),
    ("Support", ("Replacements", "Complaints", "Consultations", "Remote Monitoring")),
)


@dataclass(frozen=True)
class Step:
    """One kind of workflow step; a template is a step within one course's workflow.

    Attributes:
        task: ``task_name`` (e.g. 'Sectioned', 'TP# Added', 'Submitted', §1a samples).
        action: ``action_name`` (e.g. 'Add TP#', 'Submit Patient').
        category: child category name.
        function: 1 submit/process, 2 backup/archive, 4 add/update (§1a).
        hours: typical duration.
        extensions: allowed upload extensions (a step that takes a file).
        separate: done once per jaw (tasks get jaw 2 = upper, 3 = lower).
        plan: works on a treatment plan (tasks point at one of the order's plans).
        doctor: done by the doctor rather than a technician.
    """

    task: str
    action: str
    category: str
    function: int = 1
    hours: int = 4
    extensions: str | None = None
    separate: bool = False
    plan: bool = False
    doctor: bool = False


STEPS: dict[str, Step] = {
    s.task: s
    for s in (
        Step("Submitted", "Submit Patient", "Submission", hours=1, doctor=True),
        Step("Records Received", "Receive Records", "Records Review", 4, 2),
        Step("Photos Reviewed", "Review Photos", "Photos", extensions="jpg,png"),
        Step("Scan Checked", "Check Scan", "Scan Review", extensions="stl,zip"),
        Step("Prescription Reviewed", "Review Prescription", "Prescription", extensions="pdf"),
        Step("Sectioned", "Section Model", "Segmentation", extensions="stl", separate=True),
        Step("Model Prepared", "Prepare Model", "Model Prep", extensions="stl", separate=True),
        Step("Setup Created", "Create Setup", "Setup", hours=8, plan=True),
        Step("Staging Done", "Stage Movements", "Staging", hours=6, plan=True),
        Step("IPR Planned", "Plan IPR", "IPR Planning", plan=True),
        Step("Attachments Placed", "Place Attachments", "Attachments", plan=True),
        Step("TP# Added", "Add TP#", "Doctor Review", 4, 1, plan=True),
        Step("Sent for Review", "Send to Doctor", "Doctor Review", 4, 1, plan=True),
        Step("Doctor Approved", "Approve Plan", "Doctor Review", hours=24, plan=True, doctor=True),
        Step(
            "Modifications Requested",
            "Request Changes",
            "Doctor Review",
            4,
            12,
            plan=True,
            doctor=True,
        ),
        Step(
            "Aligners Designed",
            "Design Aligners",
            "Aligner Design",
            hours=8,
            extensions="stl",
            separate=True,
        ),
        Step("Printed", "Print Models", "Printing", hours=6, separate=True),
        Step("Thermoformed", "Thermoform", "Thermoforming", separate=True),
        Step("Trimmed", "Trim Trays", "Trimming", separate=True),
        Step("Polished", "Polish Trays", "Polishing", hours=2),
        Step("Laser Marked", "Mark Trays", "Laser Marking", hours=1),
        Step("Inspected", "Inspect Trays", "Inspection", hours=2),
        Step("Fit Checked", "Check Fit", "Fit Check", hours=2, separate=True),
        Step("QC Passed", "Pass QC", "Final QC", hours=1),
        Step("Packed", "Pack Order", "Packing", hours=1),
        Step("Label Printed", "Print Label", "Labels", hours=1),
        Step("Shipped", "Ship Order", "Dispatch", hours=2),
        Step("Tracking Sent", "Send Tracking", "Tracking", 4, 1),
        Step("Invoiced", "Create Invoice", "Invoicing", hours=1),
        Step("Paid", "Record Payment", "Payments", 4, 24),
        Step("Backup Stored", "Backup Files", "Model Prep", 2, 1),
        Step("Files Archived", "Archive Files", "Model Prep", 2, 1),
        Step(
            "Retainer Designed",
            "Design Retainer",
            "Retainer Design",
            extensions="stl",
            separate=True,
        ),
        Step("IDB Trays Designed", "Design IDB Trays", "Bracket Design", hours=6, extensions="stl"),
        Step("Rework Done", "Rework Trays", "Rework", hours=6),
        Step("Replacement Logged", "Log Replacement", "Replacements", 4, 1),
        Step("Consultation Logged", "Log Consultation", "Consultations", 4, 1, doctor=True),
        Step("Complaint Resolved", "Resolve Complaint", "Complaints", hours=24),
        Step("Credit Applied", "Apply Credit", "Credits", 4, 1),
        Step(
            "Progress Checked", "Check Progress", "Remote Monitoring", hours=2, extensions="jpg,png"
        ),
    )
}

_MAIN = (
    "Submitted", "Records Received", "Photos Reviewed", "Scan Checked", "Prescription Reviewed",
    "Sectioned", "Model Prepared", "Backup Stored", "Setup Created", "Staging Done", "IPR Planned",
    "Attachments Placed", "TP# Added", "Sent for Review", "Modifications Requested",
    "Doctor Approved", "Aligners Designed", "IDB Trays Designed", "Printed", "Thermoformed",
    "Trimmed", "Polished", "Laser Marked", "Inspected", "Fit Checked", "Rework Done", "QC Passed",
    "Packed", "Label Printed", "Shipped", "Tracking Sent", "Invoiced", "Paid", "Files Archived",
)  # fmt: skip
_REFINEMENT = (
    "Submitted", "Records Received", "Photos Reviewed", "Scan Checked", "Sectioned",
    "Model Prepared", "Setup Created", "Staging Done", "IPR Planned", "Attachments Placed",
    "TP# Added", "Sent for Review", "Doctor Approved", "Aligners Designed", "Printed",
    "Thermoformed", "Trimmed", "Polished", "Inspected", "Fit Checked", "QC Passed", "Packed",
    "Label Printed", "Shipped", "Tracking Sent", "Invoiced", "Paid", "Files Archived",
)  # fmt: skip
_REPLACEMENT = (
    "Submitted", "Replacement Logged", "Model Prepared", "Printed", "Thermoformed", "Trimmed",
    "Polished", "Inspected", "QC Passed", "Packed", "Label Printed", "Shipped", "Tracking Sent",
    "Invoiced", "Paid",
)  # fmt: skip
_ANY = (
    "Submitted", "Records Received", "Scan Checked", "Retainer Designed", "Printed", "Thermoformed",
    "Trimmed", "Polished", "Inspected", "QC Passed", "Packed", "Shipped", "Tracking Sent",
    "Invoiced", "Paid",
)  # fmt: skip
_CUSTOM = (
    "Submitted", "Consultation Logged", "Retainer Designed", "Printed", "Thermoformed",
    "QC Passed", "Shipped", "Invoiced",
)  # fmt: skip
#: Workflow (ordered steps) per course id.
WORKFLOWS: dict[int, tuple[str, ...]] = {
    1: _MAIN,
    2: _REFINEMENT,
    3: _REPLACEMENT,
    4: _ANY,
    7: ("Submitted", "Invoiced", "Paid"),
    8: ("Submitted", "Packed", "Shipped", "Invoiced"),
    CUSTOM_COURSE: _CUSTOM,
}
_TEMPLATES_TOTAL = 169
_PREDECESSORS_TOTAL = 191


@dataclass(frozen=True)
class Template:
    """A dispatch_template row and what tasks need to know about it."""

    id: int
    course_id: int | None
    step: Step
    status: int


def category_rows() -> list[tuple[int, str, int | None]]:
    """dispatch_category: eight top-level categories, then their children."""
    rows: list[tuple[int, str, int | None]] = [
        (i + 1, name, None) for i, (name, _) in enumerate(_CATEGORIES)
    ]
    for parent, (_, children) in enumerate(_CATEGORIES, start=1):
        rows.extend((len(rows) + 1, child, parent) for child in children)
    return rows


def templates() -> list[Template]:
    """The 169 templates: one per (course, step) of each workflow, then retired ones.

    Ids have gaps (templates deleted over the years), fixed for every seed.
    """
    rng = random.Random("sandbox:dispatch_template")
    result: list[Template] = []
    next_id = 1
    workflow_steps = [(course, task) for course, steps in WORKFLOWS.items() for task in steps]
    retired = [task for task in STEPS] * 2
    for course, task in workflow_steps + [(0, task) for task in retired]:
        if len(result) == _TEMPLATES_TOTAL:
            break
        status = 5 if task == "TP# Added" else 1  # §1a sample: 'TP# Added' fn4 status5
        result.append(Template(next_id, course or None, STEPS[task], status if course else 0))
        next_id += 1 if rng.random() < 0.93 else rng.randint(2, 3)
    return result


def template_rows(rows: list[Template]) -> Iterator[tuple[object, ...]]:
    """dispatch_template rows."""
    category_id = {name: row_id for row_id, name, _ in category_rows()}
    for t in rows:
        s = t.step
        yield (
            t.id,
            s.task,
            s.action,
            s.task.lower().replace(" ", "_").replace("#", "no"),
            s.function,
            t.status,
            s.hours,
            category_id[s.category],
            t.course_id,
            t.status != 0,
            s.function == 2,
            s.extensions,
            '{"after_hours": 48}' if s.hours >= 24 else None,
            s.separate,
        )


def predecessor_rows(rows: list[Template], defects: DefectLog) -> list[tuple[int, int, int]]:
    """dispatch_template_predecessors: each step's predecessor(s), plus one cycle.

    ``from_template_id`` is the later step and ``to_template_id`` its predecessor. Chain
    edges come first, then skip edges (a step that may start two steps earlier) until 190
    edges; edge 191 makes the custom course's third step a predecessor of its first, which
    closes a cycle (a topological sort of the templates must detect it).
    """
    chains: dict[int, list[int]] = {}
    for t in rows:
        if t.course_id is not None:
            chains.setdefault(t.course_id, []).append(t.id)
    edges = [(chain[k], chain[k - 1]) for chain in chains.values() for k in range(1, len(chain))]
    skips = [(chain[k], chain[k - 2]) for chain in chains.values() for k in range(2, len(chain))]
    edges += skips[: _PREDECESSORS_TOTAL - 1 - len(edges)]
    custom = chains[CUSTOM_COURSE]
    edges.append((custom[0], custom[2]))
    result = [(row_id, a, b) for row_id, (a, b) in enumerate(edges, start=1)]
    defects.add("template_cycle", "dispatch_template_predecessors", result[-1][0])
    return result


def task_rows(
    seed: int,
    target: int,
    orders: Orders,
    patients: Patients,
    files: FileIndex,
    actors: Actors,
    rows: list[Template],
) -> Iterator[tuple[object, ...]]:
    """dispatch_task: each instruction's workflow, done as far as its status says.

    ``target`` is the wanted total; each template is instantiated ``target / Σ workflow
    lengths`` times on average (jaw-split steps first), so the total lands within a
    fraction of a percent of it at any scale. A jaw-split step's copies alternate
    upper and lower.
    """
    rng = stream(seed, "dispatch_task")
    by_course: dict[int | None, list[Template]] = {}
    for t in rows:
        if t.course_id is not None:
            by_course.setdefault(t.course_id, []).append(t)
    steps = sum(len(by_course[c]) for c in orders.course)
    per_template = target / max(steps, 1)
    whole, extra = int(per_template), per_template - int(per_template)
    done_share = {4: 1.0, 2: 0.7, 1: 0.15, 0: 0.05}
    task_id = 0
    for i, instruction_id in enumerate(orders.ids):
        workflow = by_course[orders.course[i]]
        doctor = patients.doctor[orders.patient[i]]
        first_file, file_count = files.first[i], files.count[i]
        first_plan, plan_count = orders.plan_first[i], orders.plan_count[i]
        planned: list[tuple[Template, int]] = []
        for t in workflow:
            copies = whole + (rng.random() < extra)
            planned.extend((t, k) for k in range(copies))
        done_until = round(len(planned) * done_share.get(orders.status[i], 0.5))
        clock = orders.time[i]
        for position, (t, k) in enumerate(planned):
            task_id += 1
            step = t.step
            done = position < done_until
            if done:
                clock = clamp(clock + int(step.hours * HOUR * rng.uniform(0.5, 2.0)))
                if step.doctor and doctor is not None:
                    actor: int | None = doctor
                else:
                    actor = rng.choice(actors.technicians)
            else:
                actor = rng.choice(actors.technicians) if rng.random() < 0.3 else None
            if step.separate:
                jaw: int | None = 2 if k % 2 == 0 else 3
            else:
                jaw = 1 if rng.random() < 0.6 else None
            yield (
                task_id,
                instruction_id,
                t.id,
                first_plan + rng.randrange(plan_count) if step.plan and plan_count else None,
                first_file + rng.randrange(file_count) if step.extensions and file_count else None,
                actor,
                done,
                at(clock) if done else None,
                sentence(rng) if rng.random() < 0.03 else None,
                jaw,
            )
