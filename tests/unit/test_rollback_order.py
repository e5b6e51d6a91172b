"""Rollback order, without a database: later phases first, children before parents within one.

Deleting a parent before its children fails on a foreign key (or, with ``on delete set
null``, silently orphans them), so the order is the contract of ``rollback_phase``.
"""

from __future__ import annotations

from migration_ops.rollback import covered_phases, deletion_order


def test_a_rollback_covers_the_phase_and_every_later_one_latest_first() -> None:
    assert [p.number for p in covered_phases(2)] == [5, 4, 3, 2]
    assert [p.number for p in covered_phases(4)] == [5, 4]
    assert [p.number for p in covered_phases(5)] == [5]


def test_children_are_deleted_before_their_parents_and_later_phases_first() -> None:
    order = deletion_order(1)
    names = [e.name for e in order]
    assert names == [
        "embed_projects",
        "embed_messages",
        "embed_orders",
        "embed_profiles",
        "workflow_tasks",
        "workflow_template_predecessors",
        "workflow_templates",
        "workflow_categories",
        "order_state_history",
        "message_attachments",
        "plan_comments",
        "messages",
        "treatment_plans",
        "files",
        "projects",
        "orders",
        "office_owners",
        "jaws",
        "doctor_offices",
        "profiles",
        "order_types",
        "offices",
    ]
    for position, entity in enumerate(order):
        for parent in entity.parents:
            assert names.index(parent) > position, (entity.name, parent)
    assert [e.phase for e in order] == sorted((e.phase for e in order), reverse=True)
    assert [e.name for e in deletion_order(3)] == names[:12]
