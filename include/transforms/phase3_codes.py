"""Phase 3 (communication) code maps: the message type catalog and ``dispatch_record.type``.

``dispatch_record.type`` is an undocumented integer (legacy-system.md §1a dispatch_record,
§1c #17). The production migration read 3 as user communication (support, questions), 5 as
a clinical note or treatment instruction, 6 as patient/case communication and 8 as a status
update ("skip to…", "contact clinic"), and everything else as general; the 2025 shares are
5 ≈ 52 %, 6 ≈ 42 %, 8 ≈ 3.8 %, 3 ≈ 2.1 %, 13 NULLs.

Here the known codes map to the standard types; NULL and any other code become ``general``
(the message is real, only its kind is unknown) and keep the raw code in
``messages.legacy_type``: never quarantined, never guessed into a specific kind. Plan
comments (``dispatch_comment``) have no type code and get their own type, ``plan_comment``.

The catalog is seeded by ``include/sql/target/300_phase3_communication.sql``; a test proves
the seed and :data:`MESSAGE_TYPES` agree. This module is pure: no Airflow, no database driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.transforms.reference import REFERENCE_TABLES, ReferenceTable


@dataclass(frozen=True)
class MessageType:
    """One row of ``public.message_types``.

    Attributes:
        code: stable code (upsert key of the seed, referenced by the transforms).
        name: display name.
        description: what the type means and which legacy codes map to it.
    """

    code: str
    name: str
    description: str


#: Type of a record whose ``type`` is NULL or not a known code.
DEFAULT_MESSAGE_TYPE = "general"
#: Type of every plan comment (``dispatch_comment``).
PLAN_COMMENT_MESSAGE_TYPE = "plan_comment"

#: The standard message types, in display order.
MESSAGE_TYPES: tuple[MessageType, ...] = (
    MessageType(
        "general",
        "General",
        "patient/case communication (legacy type 6), and records whose type is NULL or unknown",
    ),
    MessageType("status_update", "Status Update", "status changes and notices (legacy type 8)"),
    MessageType("question", "Question", "a question to the lab or the clinic (no legacy code)"),
    MessageType("instruction", "Instruction", "a treatment instruction (no legacy code)"),
    MessageType(
        "clinical_note", "Clinical Note", "clinical note or treatment instruction (legacy type 5)"
    ),
    MessageType("support", "Support", "user communication: support and questions (legacy type 3)"),
    MessageType("plan_comment", "Plan Comment", "a comment on a treatment plan (dispatch_comment)"),
)

REF_RECORD_MESSAGE_TYPE = ReferenceTable(
    name="ref_record_message_type",
    description=(
        "dispatch_record.type → message type code (legacy-system.md §1a: 3 support, 5 clinical "
        "note, 6 patient/case communication, 8 status update). NULL and unlisted codes → "
        "'general', raw code kept in messages.legacy_type."
    ),
    columns=(("record_type", "integer"), ("message_type", "text")),
    rows=(
        (3, "support"),
        (5, "clinical_note"),
        (6, "general"),
        (8, "status_update"),
    ),
)


def message_type_for_record(record_type: int | None) -> str:
    """Message type code of a ``dispatch_record.type`` (the Python twin of the SQL join)."""
    for code, message_type in REF_RECORD_MESSAGE_TYPE.rows:
        if code == record_type:
            return str(message_type)
    return DEFAULT_MESSAGE_TYPE


REFERENCE_TABLES[REF_RECORD_MESSAGE_TYPE.name] = REF_RECORD_MESSAGE_TYPE
