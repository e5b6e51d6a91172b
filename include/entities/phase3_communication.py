"""Phase 3 (communication): messages, their attachments, plan comments.

Runs after phase 2 (its orders, projects, treatment plans and files are the messages'
parents). The message type catalog is seeded by the phase's schema file; which Django
content type fills which explicit foreign key of a message is :data:`RECORD_TARGETS`
(documented in ``docs/phase3.md``).
"""

from __future__ import annotations

from include.entities.spec import (
    FULL,
    INSERT_ONLY,
    EntitySpec,
    GenericRelation,
    PhaseSpec,
    SourceTable,
    TextRepair,
)
from include.transforms.phase3_codes import REF_RECORD_MESSAGE_TYPE

#: ``dispatch_record.(target_type_id, target_id)`` → explicit foreign keys of
#: ``public.messages``, matched by ``(app_label, model)`` in the legacy ``django_content_type``.
#: A content type not listed here is quarantined (``messages.target_type_mapped``); adding
#: one is a configuration change (and a column of ``public.messages`` if it needs a new key).
RECORD_TARGETS: tuple[GenericRelation, ...] = (
    # §1a: "target_type_id = 11 → dispatch.patient, target_id = dispatch_patient.id".
    GenericRelation(
        "dispatch",
        "patient",
        fk_column="patient_id",
        parent_table="public.profiles",
        parent_key="legacy_patient_id",
        legacy_table="dispatch_patient",
    ),
    # §1a: user-to-user messages ("58 → a user target, target_id = auth_user.id").
    GenericRelation(
        "auth",
        "user",
        fk_column="recipient_id",
        parent_table="public.profiles",
        parent_key="legacy_user_id",
        legacy_table="auth_user",
    ),
    GenericRelation(
        "dispatch",
        "instruction",
        fk_column="order_id",
        parent_table="public.orders",
        parent_key="legacy_instruction_id",
        legacy_table="dispatch_instruction",
    ),
    GenericRelation(
        "dispatch",
        "project",
        fk_column="project_id",
        parent_table="public.projects",
        parent_key="legacy_project_id",
        legacy_table="dispatch_project",
    ),
    GenericRelation(
        "dispatch",
        "plan",
        fk_column="treatment_plan_id",
        parent_table="public.treatment_plans",
        parent_key="legacy_plan_id",
        legacy_table="dispatch_plan",
    ),
)

#: The one text-repair rule for message text: the original goes to ``metadata.legacy_text``.
MESSAGE_TEXT = TextRepair(column="content", metadata_key="legacy_text")

MESSAGES = EntitySpec(
    name="messages",
    phase=3,
    description=(
        "Every dispatch_record; the generic relation resolved by content type name into "
        "patient/recipient/order/project/plan foreign keys, unresolvable ones quarantined by case."
    ),
    sources=(
        SourceTable(
            "dispatch_record",
            (
                "id",
                "target_id",
                "type",
                "created_at",
                "text",
                "author_id",
                "target_type_id",
                "group_id",
                "public",
            ),
            change=INSERT_ONLY,
        ),  # fmt: skip
        SourceTable(
            "django_content_type", ("id", "app_label", "model"), change=FULL, primary_columns=()
        ),
        *dict.fromkeys(relation.source for relation in RECORD_TARGETS),
    ),
    transform_sql="transform/messages.sql",
    suite="messages.json",
    target_table="public.messages",
    key="legacy_record_id",
    reference_tables=(REF_RECORD_MESSAGE_TYPE.name,),
    generic_relations=RECORD_TARGETS,
    text_repair=(MESSAGE_TEXT,),
)

PLAN_COMMENTS = EntitySpec(
    name="plan_comments",
    phase=3,
    description="Every dispatch_comment as a 'plan_comment' message on its plan and order.",
    sources=(
        SourceTable(
            "dispatch_comment",
            ("id", "plan_id", "author_id", "text", "created_at"),
            change=INSERT_ONLY,
        ),
    ),
    transform_sql="transform/plan_comments.sql",
    suite="plan_comments.json",
    target_table="public.messages",
    key="legacy_comment_id",
    text_repair=(MESSAGE_TEXT,),
)

MESSAGE_ATTACHMENTS = EntitySpec(
    name="message_attachments",
    phase=3,
    description="dispatch_record_attachments: migrated messages linked to migrated files.",
    sources=(
        SourceTable(
            "dispatch_record_attachments", ("id", "record_id", "file_id"), change=INSERT_ONLY
        ),
    ),
    transform_sql="transform/message_attachments.sql",
    suite="message_attachments.json",
    target_table="public.message_attachments",
    key="legacy_record_attachment_id",
    parents=("messages",),
)

PHASE_3 = PhaseSpec(
    number=3,
    name="communication",
    title="Communication: messages, attachments, plan comments",
    entities=(MESSAGES, PLAN_COMMENTS, MESSAGE_ATTACHMENTS),
    schema_sql=("target/300_phase3_communication.sql",),
)
