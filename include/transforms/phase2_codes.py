"""Phase 2 (relationships) code maps: order status, project type and status, MIME types.

Sources of the codes (legacy-system.md §1a):

* ``dispatch_instruction.status``: 0 no product, 1 submitted, 2 approved, 4 shipped (the
  2025 mix is 4 = 83 %, 1 = 15 %, 2 = 2 %). Code 3 and anything else are undocumented.
* ``dispatch_project.type``: 0, 3 (≈ 52 %, the treatment plan), 10, 11. Only 3 has a
  documented meaning; 0 is the Django field's default, i.e. no type was set.
* ``dispatch_project.status``: 0 in 99.98 % of rows (the normal state every project is
  created in), 2 rarely; the meaning of 2 is undocumented.

The rule is the same for all three: a documented code maps to its target value; any other
code maps to NULL, keeps its raw value in the row's ``legacy_<column>`` and is flagged for a
human (``<column>_unknown`` in the row's ``flags``). It is never quarantined (the order or
project is real, only one code is unreadable) and never guessed into a known value.

Each map is added to :data:`include.transforms.reference.REFERENCE_TABLES` when this module
is imported (``reference`` imports it last), so entity specs declare them like phase 1's.
The target enum labels and the flag vocabularies are defined here too, and the tests prove
``include/sql/target/200_phase2_relationships.sql`` carries exactly these.

This module is pure: no Airflow, no database driver.
"""

from __future__ import annotations

from include.transforms.mime import MIME_TYPES
from include.transforms.reference import REFERENCE_TABLES, ReferenceTable

#: Labels of the target enum ``public.order_status``.
ORDER_STATUSES: tuple[str, ...] = ("no_product", "submitted", "approved", "shipped")
#: Labels of the target enum ``public.project_type``.
PROJECT_TYPES: tuple[str, ...] = ("unspecified", "treatment_plan")
#: Labels of the target enum ``public.project_status``.
PROJECT_STATUSES: tuple[str, ...] = ("active",)

#: Review flags a row of each table may carry (``flags text[]``, checked by the target).
ORDER_FLAGS: tuple[str, ...] = (
    "status_unknown",
    "doctor_missing",
    "office_missing",
    "order_type_missing",
)
JAW_FLAGS: tuple[str, ...] = ("unreferenced", "arch_conflict")
PROJECT_FLAGS: tuple[str, ...] = ("type_unknown", "status_unknown", "no_plan", "several_orders")
FILE_FLAGS: tuple[str, ...] = ("extension_unknown",)

REF_ORDER_STATUS = ReferenceTable(
    name="ref_order_status",
    description=(
        "dispatch_instruction.status → order status (legacy-system.md §1a: 0 no_product, "
        "1 submitted, 2 approved, 4 shipped). Other codes → NULL, raw code kept in "
        "orders.legacy_status, flagged status_unknown."
    ),
    columns=(("status", "integer"), ("order_status", "text")),
    rows=((0, "no_product"), (1, "submitted"), (2, "approved"), (4, "shipped")),
)

REF_PROJECT_TYPE = ReferenceTable(
    name="ref_project_type",
    description=(
        "dispatch_project.type → project type (legacy-system.md §1a: 3 is the treatment plan; "
        "0 is the field default, no type set). 10, 11 and other codes are undocumented → "
        "NULL, raw code kept in projects.legacy_type, flagged type_unknown."
    ),
    columns=(("type", "integer"), ("project_type", "text")),
    rows=((0, "unspecified"), (3, "treatment_plan")),
)

REF_PROJECT_STATUS = ReferenceTable(
    name="ref_project_status",
    description=(
        "dispatch_project.status → project status (legacy-system.md §1a: 0 in 99.98 % of rows, "
        "the state projects are created in). 2 and other codes are undocumented → NULL, raw "
        "code kept in projects.legacy_status, flagged status_unknown."
    ),
    columns=(("status", "integer"), ("project_status", "text")),
    rows=((0, "active"),),
)

REF_MIME_TYPE = ReferenceTable(
    name="ref_mime_type",
    description=(
        "real file extension (lower case, no dot) → MIME type, from include.transforms.mime; "
        "an extension not listed gives application/octet-stream, flagged extension_unknown."
    ),
    columns=(("extension", "text"), ("mime_type", "text")),
    rows=tuple(sorted(MIME_TYPES.items())),
)

#: The phase 2 maps by name (also merged into ``REFERENCE_TABLES``).
PHASE2_REFERENCE_TABLES: dict[str, ReferenceTable] = {
    table.name: table
    for table in (REF_ORDER_STATUS, REF_PROJECT_TYPE, REF_PROJECT_STATUS, REF_MIME_TYPE)
}


def order_status(code: int) -> str | None:
    """Target order status of a ``dispatch_instruction.status`` (``None`` when undocumented)."""
    return next((str(row[1]) for row in REF_ORDER_STATUS.rows if row[0] == code), None)


REFERENCE_TABLES.update(PHASE2_REFERENCE_TABLES)
