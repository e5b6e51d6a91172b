"""Phase 4 (workflow) code maps: order states, template functions, task jaws.

Sources (legacy-system.md §1a):

* ``dispatch_state.status``: only 11 (2,599 rows) and 12 (2,152) are observed. The production
  migration mapped them to ``treatment_active`` / ``case_closed``; another reading (11 initial
  assignment/review, 12 advanced processing) exists, so the catalog keeps the legacy code
  beside the name. A 13-20 mapping exists only as a guess: those codes are *not* mapped, and
  a state row carrying one is quarantined (rule ``order_state_history.status_known``) until
  someone who knows the legacy system adds it here.
* ``dispatch_template.function``: 1 submit/process, 2 backup/archive, 4 add/update.
* ``dispatch_task.jaw``: 1 both arches, 2 upper, 3 lower.

The order-state catalog is seeded by ``include/sql/target/400_phase4_workflow.sql``; a test
proves the seed and :data:`ORDER_STATES` agree. This module is pure: no Airflow, no
database driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.transforms.reference import REFERENCE_TABLES, ReferenceTable


@dataclass(frozen=True)
class OrderState:
    """One row of ``public.order_states``.

    Attributes:
        code: stable code.
        name: display name.
        legacy_status: the ``dispatch_state.status`` code it comes from.
        description: what is known about its meaning.
    """

    code: str
    name: str
    legacy_status: int
    description: str


ORDER_STATES: tuple[OrderState, ...] = (
    OrderState(
        "treatment_active",
        "Treatment active",
        11,
        "legacy status 11; read by the production migration as treatment active, elsewhere as "
        "initial assignment/review",
    ),
    OrderState(
        "case_closed",
        "Case closed",
        12,
        "legacy status 12; read by the production migration as case closed, elsewhere as "
        "advanced processing",
    ),
)

#: Labels of ``public.workflow_templates.function``.
TEMPLATE_FUNCTIONS: tuple[str, ...] = ("process", "archive", "update")
#: Labels of ``public.workflow_tasks.jaw``.
TASK_JAWS: tuple[str, ...] = ("both", "upper", "lower")

REF_STATE_ORDER_STATE = ReferenceTable(
    name="ref_state_order_state",
    description=(
        "dispatch_state.status → order state code (11 treatment_active, 12 case_closed). "
        "Unlisted codes have no state: the row is quarantined (order_state_history.status_known)."
    ),
    columns=(("status", "integer"), ("order_state", "text")),
    rows=tuple((state.legacy_status, state.code) for state in ORDER_STATES),
)

REF_TEMPLATE_FUNCTION = ReferenceTable(
    name="ref_template_function",
    description=(
        "dispatch_template.function → function label (1 process, 2 archive, 4 update). "
        "Unlisted codes → NULL; the raw code is always kept (legacy_function)."
    ),
    columns=(("function", "integer"), ("label", "text")),
    rows=((1, "process"), (2, "archive"), (4, "update")),
)

REF_TASK_JAW = ReferenceTable(
    name="ref_task_jaw",
    description=(
        "dispatch_task.jaw → arch (1 both, 2 upper, 3 lower). NULL stays NULL; an unlisted code "
        "→ NULL with the raw code in metadata.legacy_jaw."
    ),
    columns=(("jaw", "integer"), ("label", "text")),
    rows=((1, "both"), (2, "upper"), (3, "lower")),
)

for _table in (REF_STATE_ORDER_STATE, REF_TEMPLATE_FUNCTION, REF_TASK_JAW):
    REFERENCE_TABLES[_table.name] = _table
