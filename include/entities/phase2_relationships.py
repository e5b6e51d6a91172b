"""Phase 2 (relationships): doctor-office links, jaws, orders, projects, plans, files.

Every parent in phase 1 (profiles, offices, order types) is resolved through the target's
legacy-id columns by the transform SQL; the phase's gate guarantees phase 1 validated first.
Inside the phase, ``parents`` orders the task groups so each foreign key resolves to rows
loaded earlier in the same run.

``public.doctor_offices`` has two legacy sources, so it is fed by two entities, each
reconciled against its own primary table: ``doctor_offices`` (one link per
``dispatch_office_doctors`` row) and ``office_owners`` (one ownership link per
``dispatch_office`` row). Both upsert on ``legacy_link`` (office and user ids), so an owner
who also has an m2m row ends on one link (see ``docs/phase2.md``).
"""

from __future__ import annotations

from include.entities.spec import (
    INSERT_ONLY,
    UPDATED_AT,
    EntitySpec,
    Follow,
    ObjectCopySpec,
    PhaseSpec,
    SourceTable,
    TextRepair,
)

DOCTOR_OFFICES = EntitySpec(
    name="doctor_offices",
    phase=2,
    description="Every dispatch_office_doctors row as a link; multi-office doctors keep all.",
    sources=(SourceTable("dispatch_office_doctors", ("id", "office_id", "user_id")),),
    transform_sql="transform/doctor_offices.sql",
    suite="doctor_offices.json",
    target_table="public.doctor_offices",
    key="legacy_office_doctor_id",
    upsert_key="legacy_link",
)

OFFICE_OWNERS = EntitySpec(
    name="office_owners",
    phase=2,
    description="Each office's owner as a link; one primary office per doctor.",
    sources=(SourceTable("dispatch_office", ("id", "doctor_id")),),
    transform_sql="transform/office_owners.sql",
    suite="office_owners.json",
    target_table="public.doctor_offices",
    key="legacy_owner_office_id",
    upsert_key="legacy_link",
    # After the m2m links: an owner with an m2m row shares its link, and the primary office
    # is chosen among all of a doctor's links.
    parents=("doctor_offices",),
    post_load_sql=("load/office_owners__links.sql",),
)

JAWS = EntitySpec(
    name="jaws",
    phase=2,
    description="Every dispatch_jaw; arch from the referencing instruction, unreferenced flagged.",
    sources=(
        SourceTable(
            "dispatch_jaw", ("id", "bond_teeth", "extract_teeth", "reason", "product_id", "labial")
        ),
        SourceTable(
            "dispatch_instruction",
            ("id", "upper_jaw_id", "lower_jaw_id"),
            primary_columns=("upper_jaw_id", "lower_jaw_id"),
        ),
    ),
    transform_sql="transform/jaws.sql",
    suite="jaws.json",
    target_table="public.jaws",
    key="legacy_jaw_id",
)

ORDERS = EntitySpec(
    name="orders",
    phase=2,
    description="Every dispatch_instruction; doctor/office via the patient, deleted kept.",
    sources=(
        SourceTable(
            "dispatch_instruction",
            (
                "id",
                "patient_id",
                "course_id",
                "status",
                "submitted_at",
                "updated_at",
                "notes",
                "complaint",
                "conditions",
                "objective",
                "scanner_notes",
                "exports",
                "price",
                "model",
                "scanner",
                "cbct",
                "comprehensive",
                "accept_extraction",
                "deleted",
                "order",
                "upper_jaw_id",
                "lower_jaw_id",
                "suffix",
            ),
            change=UPDATED_AT,
        ),
    ),
    # Doctor and office come through the patient: a moved patient re-derives their orders.
    follows=(Follow("profiles", "dispatch_patient", "patient_id"),),
    transform_sql="transform/orders.sql",
    suite="orders.json",
    target_table="public.orders",
    key="legacy_instruction_id",
    parents=("jaws",),
    reference_tables=("ref_order_status",),
    # Instruction texts carry the documented mojibake (legacy-system.md §1c #19).
    text_repair=tuple(
        TextRepair(column, f"legacy_{column}")
        for column in ("notes", "complaint", "conditions", "objective", "scanner_notes")
    ),
)

PROJECTS = EntitySpec(
    name="projects",
    phase=2,
    description="Every dispatch_project, linked to its order through the plans that use it.",
    sources=(
        SourceTable(
            "dispatch_project",
            ("id", "uid", "name", "size", "type", "status", "creator_id", "created_at", "public"),
        ),
        SourceTable(
            "dispatch_plan", ("id", "instruction_id", "project_id"), primary_columns=("project_id",)
        ),
    ),
    transform_sql="transform/projects.sql",
    suite="projects.json",
    target_table="public.projects",
    key="legacy_project_id",
    parents=("orders",),
    reference_tables=("ref_project_type", "ref_project_status"),
)

TREATMENT_PLANS = EntitySpec(
    name="treatment_plans",
    phase=2,
    description="Every dispatch_plan (TP revision): one order, one possibly shared project.",
    sources=(
        SourceTable(
            "dispatch_plan",
            ("id", "instruction_id", "project_id", "notes", "number", "name", "original"),
        ),
    ),
    transform_sql="transform/treatment_plans.sql",
    suite="treatment_plans.json",
    target_table="public.treatment_plans",
    key="legacy_plan_id",
    parents=("orders", "projects"),
)

FILES = EntitySpec(
    name="files",
    phase=2,
    description="Every dispatch_file; MIME from the real extension, bytes to Storage with sha256.",
    sources=(
        SourceTable(
            "dispatch_file",
            (
                "id",
                "uid",
                "name",
                "ext",
                "size",
                "type",
                "instruction_id",
                "created_at",
                "description",
                "product_id",
                "parameters",
                "record_id",
                "status",
            ),
            change=INSERT_ONLY,
        ),
    ),
    transform_sql="transform/files.sql",
    suite="files.json",
    target_table="public.files",
    key="legacy_file_id",
    parents=("orders",),
    reference_tables=("ref_mime_type",),
    object_copy=ObjectCopySpec(missing_rule="files.source_object_present"),
)

PHASE_2 = PhaseSpec(
    number=2,
    name="relationships",
    title="Relationships: doctor offices, orders, jaws, projects, treatment plans, files",
    entities=(DOCTOR_OFFICES, OFFICE_OWNERS, JAWS, ORDERS, PROJECTS, TREATMENT_PLANS, FILES),
    schema_sql=("target/200_phase2_relationships.sql",),
)
