"""Phase 4 (workflow): order states, templates and their graph, tasks (the volume entity).

Entities: the per-order state history, workflow categories, templates, the templates'
predecessor graph, and the per-order workflow tasks (~1M rows at production scale).

Runs after phase 3 (the gate); its parents are phase 1's profiles and order types and phase
2's orders, treatment plans and files. The order-state catalog is seeded by the phase's
schema file, which also creates the per-order audit trail (``public.order_audit_trail``).
"""

from __future__ import annotations

from include.entities.spec import INSERT_ONLY, EntitySpec, PhaseSpec, SourceTable, TextRepair
from include.transforms.phase4_codes import (
    REF_STATE_ORDER_STATE,
    REF_TASK_JAW,
    REF_TEMPLATE_FUNCTION,
)

ORDER_STATE_HISTORY = EntitySpec(
    name="order_state_history",
    phase=4,
    description="Every dispatch_state event on its order: state mapped, 'on', actor, time kept.",
    sources=(
        SourceTable(
            "dispatch_state",
            ("id", "status", "on", "changed_at", "actor_id", "instruction_id"),
            change=INSERT_ONLY,
        ),
    ),
    transform_sql="transform/order_state_history.sql",
    suite="order_state_history.json",
    target_table="public.order_state_history",
    key="legacy_state_id",
    reference_tables=(REF_STATE_ORDER_STATE.name,),
)

WORKFLOW_CATEGORIES = EntitySpec(
    name="workflow_categories",
    phase=4,
    description="Every dispatch_category; the parent hierarchy linked after the load.",
    sources=(SourceTable("dispatch_category", ("id", "name", "parent_id")),),
    transform_sql="transform/workflow_categories.sql",
    suite="workflow_categories.json",
    target_table="public.workflow_categories",
    key="legacy_category_id",
    post_load_sql=("load/workflow_categories__link_parent.sql",),
)

WORKFLOW_TEMPLATES = EntitySpec(
    name="workflow_templates",
    phase=4,
    description="Every dispatch_template with its category and order type (course).",
    sources=(
        SourceTable(
            "dispatch_template",
            (
                "id",
                "task_name",
                "action_name",
                "text_name",
                "function",
                "status",
                "duration",
                "category_id",
                "course_id",
                "predefined",
                "read_only",
                "extensions",
                "alerts",
                "separate",
            ),
        ),  # fmt: skip
    ),
    transform_sql="transform/workflow_templates.sql",
    suite="workflow_templates.json",
    target_table="public.workflow_templates",
    key="legacy_template_id",
    parents=("workflow_categories",),
    reference_tables=(REF_TEMPLATE_FUNCTION.name,),
)

WORKFLOW_TEMPLATE_PREDECESSORS = EntitySpec(
    name="workflow_template_predecessors",
    phase=4,
    description="The template predecessor graph; edges on a cycle flagged and listed, kept.",
    sources=(
        SourceTable("dispatch_template_predecessors", ("id", "from_template_id", "to_template_id")),
    ),
    transform_sql="transform/workflow_template_predecessors.sql",
    suite="workflow_template_predecessors.json",
    target_table="public.workflow_template_predecessors",
    key="legacy_predecessor_id",
    parents=("workflow_templates",),
)

WORKFLOW_TASKS = EntitySpec(
    name="workflow_tasks",
    phase=4,
    description="Every dispatch_task (~1M): the order's step of a template, done when and by whom.",
    sources=(
        SourceTable(
            "dispatch_task",
            (
                "id",
                "instruction_id",
                "template_id",
                "plan_id",
                "file_id",
                "actor_id",
                "checked",
                "done_at",
                "text",
                "jaw",
            ),
            change=INSERT_ONLY,  # legacy-system.md: tasks are insert-only (done_at set at insert)
        ),  # fmt: skip
    ),
    transform_sql="transform/workflow_tasks.sql",
    suite="workflow_tasks.json",
    target_table="public.workflow_tasks",
    key="legacy_task_id",
    parents=("workflow_templates",),
    reference_tables=(REF_TASK_JAW.name,),
    text_repair=(TextRepair(column="note", metadata_key="legacy_text"),),
)

PHASE_4 = PhaseSpec(
    number=4,
    name="workflow",
    title="Workflow: order states and history, templates and their graph, tasks, audit trail",
    entities=(
        ORDER_STATE_HISTORY,
        WORKFLOW_CATEGORIES,
        WORKFLOW_TEMPLATES,
        WORKFLOW_TEMPLATE_PREDECESSORS,
        WORKFLOW_TASKS,
    ),
    schema_sql=("target/400_phase4_workflow.sql",),
)
