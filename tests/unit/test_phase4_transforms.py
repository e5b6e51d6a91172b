"""Phase 4 schema, transforms and suites, rule by rule, on a real PostgreSQL through the engine.

Same set-up as ``test_phase3_transforms.py``: the real phase 1 schema, the phase 2 contract
stand-in, the real phase 4 schema (applied twice), hand-made parents and staged legacy rows,
one per edge case, run through the engine's steps (transform, GX validation with quarantine,
load with post-load SQL, reconciliation).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest

from include.entities import get_phase
from include.entities.phase4_workflow import PHASE_4
from include.transforms.phase4_codes import ORDER_STATES, REF_STATE_ORDER_STATE
from migration_ops import runs
from migration_ops.db import connect
from tests.unit.staged_runs import run_phase_from_staging
from tests.unit.test_phase3_transforms import PHASE_2_STAND_IN

pytestmark = pytest.mark.e2e

AT = dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(hours=5)

STAGING_DDL = """
create schema if not exists staging;
create table staging.order_state_history__dispatch_state (
    id integer, status integer, "on" boolean, changed_at timestamptz, actor_id integer,
    instruction_id integer
);
create table staging.workflow_categories__dispatch_category (
    id integer, name varchar(255), parent_id integer
);
create table staging.workflow_templates__dispatch_template (
    id integer, task_name varchar(255), action_name varchar(255), text_name varchar(255),
    function integer, status integer, duration integer, category_id integer, course_id integer,
    predefined boolean, read_only boolean, extensions varchar(255), alerts text, separate boolean
);
create table staging.workflow_template_predecessors__dispatch_template_predecessors (
    id integer, from_template_id integer, to_template_id integer
);
create table staging.workflow_tasks__dispatch_task (
    id integer, instruction_id integer, template_id integer, plan_id integer, file_id integer,
    actor_id integer, checked boolean, done_at timestamptz, text text, jaw integer
);
"""

# (id, status, on, changed_at, actor_id, instruction_id)
STATES = [
    (1, 11, True, AT, 3, 201),
    (2, 12, False, LATER, None, 201),
    (3, 11, True, AT, 3, None),
    (4, 12, True, AT, 3, 203),
    (5, 13, True, AT, 3, 202),
    (6, 11, True, AT, 99, 202),
]
# (id, name, parent_id): 6's parent comes later in the same load; 4's does not exist;
# 5's parent (3) is quarantined for its blank name.
CATEGORIES = [
    (1, "Intake", None),
    (2, " Submission ", 1),
    (3, "   ", 1),
    (4, "Orphan", 77),
    (5, "Child of blank", 3),
    (6, "Early child", 7),
    (7, "Late parent", None),
]
# fmt: off
# (id, task_name, action_name, text_name, function, status, duration, category_id, course_id,
#  predefined, read_only, extensions, alerts, separate)
TEMPLATES = [
    (10, "Submitted", "Submit Patient", "submitted", 1, 1, 1, 2, 1, True, False, "jpg, PNG,",
     '{"after_hours": 48}', False),
    (11, "Sectioned", "Section Model", "sectioned", 2, 1, 4, 2, 1, True, True, "stl", "{bad",
     True),
    (12, " ", None, None, 7, 0, 0, 3, 99, False, False, None, None, None),
    (13, "Cycle A", None, None, 4, 5, 1, None, None, False, False, None, None, None),
    (14, "Cycle B", None, None, 4, 1, 1, None, None, False, False, None, None, None),
    (15, "Cycle C", None, None, 4, 1, 1, None, None, False, False, None, None, None),
    (16, "After cycle", None, None, 4, 1, 1, None, None, False, False, None, None, None),
]
# fmt: on
# (id, from_template_id, to_template_id): from's predecessor is to.
PREDECESSORS = [
    (1, 11, 10),
    (2, 13, 14),
    (3, 14, 15),
    (4, 15, 13),
    (5, 12, 12),
    (6, 10, 999),
    (7, 998, 10),
    (8, 16, 13),
]
MOJIBAKE = "Se\u00c3\u00b1al enviada"
# (id, instruction_id, template_id, plan_id, file_id, actor_id, checked, done_at, text, jaw)
TASKS = [
    (1, 201, 10, 401, 501, 3, True, AT, "Done.", 1),
    (2, 201, 11, None, None, None, False, None, None, 2),
    (3, 203, 10, None, None, 3, True, AT, None, None),
    (4, 201, 998, None, None, 3, True, AT, None, None),
    (5, 202, 10, 402, 503, 99, True, LATER, MOJIBAKE, 7),
    (6, 202, 11, None, None, 3, True, None, None, 3),
]

EXPECTED_QUARANTINE = {
    "order_state_history": {
        (3, "order_state_history.instruction_present"),
        (4, "order_state_history.order_migrated"),
        (5, "order_state_history.status_known"),
    },
    "workflow_categories": {(3, "workflow_categories.name_present")},
    "workflow_templates": set(),
    "workflow_template_predecessors": {
        (6, "workflow_template_predecessors.predecessor_migrated"),
        (7, "workflow_template_predecessors.template_migrated"),
    },
    "workflow_tasks": {
        (3, "workflow_tasks.order_migrated"),
        (4, "workflow_tasks.template_migrated"),
    },
}


def build(dsn: str) -> None:
    runs.apply_schema(dsn, get_phase(1))
    with connect(dsn) as conn:
        conn.execute(PHASE_2_STAND_IN)
    for again in (False, True):  # the second application forced: it must change nothing
        runs.apply_schema(dsn, PHASE_4, force=again)
    with connect(dsn) as conn:
        for user_id, patient_id, kind in (
            (1, None, "doctor"),
            (2, 102, "patient"),
            (3, None, "technician"),
        ):
            conn.execute(
                "insert into public.profiles (legacy_user_id, legacy_patient_id, username, "
                "profile_type) values (%s, %s, %s, %s)",
                (user_id, patient_id, f"user{user_id}", kind),
            )
        conn.execute("update public.order_types set legacy_course_id = 1 where code = 'main'")
        for instruction_id in (201, 202):
            conn.execute(
                "insert into public.orders (legacy_instruction_id, patient_id, doctor_id) "
                "select %s, p.id, d.id from public.profiles p, public.profiles d "
                "where p.legacy_user_id = 2 and d.legacy_user_id = 1",
                (instruction_id,),
            )
        conn.execute("insert into public.projects (legacy_project_id) values (301)")
        conn.execute(
            "insert into public.treatment_plans (legacy_plan_id, order_id, project_id) "
            "select 401, o.id, p.id from public.orders o, public.projects p "
            "where o.legacy_instruction_id = 201"
        )
        conn.execute("insert into public.files (legacy_file_id) values (501)")
        conn.execute(STAGING_DDL)
        for table, rows in (
            ("order_state_history__dispatch_state", STATES),
            ("workflow_categories__dispatch_category", CATEGORIES),
            ("workflow_templates__dispatch_template", TEMPLATES),
            ("workflow_template_predecessors__dispatch_template_predecessors", PREDECESSORS),
            ("workflow_tasks__dispatch_task", TASKS),
        ):
            with conn.cursor().copy(f"copy staging.{table} from stdin") as copy:
                for row in rows:
                    copy.write_row(row)


def run_phase4(dsn: str, run_id: str) -> runs.RunContext:
    """The phase through the engine's steps (staging is filled by hand, not extracted)."""
    return run_phase_from_staging(dsn, PHASE_4, run_id)


@pytest.fixture(scope="module")
def migrated(pg_socket: str) -> tuple[str, runs.RunContext]:
    from migration_ops import local_env

    dsn = local_env.ensure_database(pg_socket, "t_phase4_sql", recreate=True)
    build(dsn)
    return dsn, run_phase4(dsn, "phase4-first")


def query(dsn: str, text: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(text).fetchall()


def test_schema_seeds_exactly_the_state_catalog(migrated) -> None:
    dsn, _ = migrated
    assert set(
        query(dsn, "select code, name, legacy_status, description from public.order_states")
    ) == {(s.code, s.name, s.legacy_status, s.description) for s in ORDER_STATES}
    assert {row[1] for row in REF_STATE_ORDER_STATE.rows} == {s.code for s in ORDER_STATES}
    for table in ("order_state_history", "workflow_tasks", "workflow_template_predecessors"):
        assert query(
            dsn, f"select relrowsecurity from pg_class where oid = 'public.{table}'::regclass"
        ) == [(True,)]
    unindexed = query(
        dsn,
        """
        select c.conrelid::regclass::text, a.attname
        from pg_constraint c
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        where c.contype = 'f' and c.conrelid::regclass::text in ('order_state_history',
            'workflow_categories', 'workflow_templates', 'workflow_template_predecessors',
            'workflow_tasks')
          and not exists (select 1 from pg_index i
                          where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1])
        """,
    )
    assert unindexed == []


def test_each_rule_quarantines_exactly_its_rows(migrated) -> None:
    dsn, run = migrated
    found: dict[str, set[tuple[int, str]]] = {e.name: set() for e in PHASE_4.entities}
    for entity, legacy_id, rule in query(
        dsn,
        f"select entity, legacy_id, rule from migration.quarantine where last_run_id = '{run.run_id}'",
    ):
        found[entity].add((int(legacy_id), rule))
    assert found == EXPECTED_QUARANTINE


def test_state_history_keeps_state_on_flag_actor_and_time(migrated) -> None:
    dsn, _ = migrated
    rows = query(
        dsn,
        """
        select h.legacy_state_id, o.legacy_instruction_id, s.code, h.is_active, h.changed_at,
               a.legacy_user_id, h.legacy_actor_id, h.legacy_status
        from public.order_state_history h
        join public.orders o on o.id = h.order_id
        join public.order_states s on s.id = h.order_state_id
        left join public.profiles a on a.id = h.actor_id order by 1
        """,
    )
    assert rows == [
        (1, 201, "treatment_active", True, AT, 3, 3, 11),
        (2, 201, "case_closed", False, LATER, None, None, 12),
        (6, 202, "treatment_active", True, AT, None, 99, 11),
    ]


def test_categories_link_parents_after_the_load_whatever_the_order(migrated) -> None:
    dsn, _ = migrated
    rows = query(
        dsn,
        """
        select c.legacy_category_id, c.name, p.legacy_category_id, c.legacy_parent_id
        from public.workflow_categories c
        left join public.workflow_categories p on p.id = c.parent_id order by 1
        """,
    )
    assert rows == [
        (1, "Intake", None, None),
        (2, "Submission", 1, 1),
        (4, "Orphan", None, 77),
        (5, "Child of blank", None, 3),
        (6, "Early child", 7, 7),
        (7, "Late parent", None, None),
    ]


def test_templates_map_codes_and_keep_raw_values(migrated) -> None:
    dsn, _ = migrated
    rows = {
        r[0]: r[1:]
        for r in query(
            dsn,
            """
            select t.legacy_template_id, t.task_name, t.function, t.legacy_function,
                   c.legacy_category_id, ot.code, t.allowed_extensions, t.alerts, t.per_jaw,
                   t.metadata
            from public.workflow_templates t
            left join public.workflow_categories c on c.id = t.category_id
            left join public.order_types ot on ot.id = t.order_type_id
            """,
        )
    }
    # fmt: off
    assert rows[10] == (
        "Submitted", "process", 1, 2, "main", ["jpg", "png"], {"after_hours": 48}, False, {}
    )
    assert rows[11] == (
        "Sectioned", "archive", 2, 2, "main", ["stl"], None, True, {"legacy_alerts": "{bad"}
    )
    assert rows[12] == (None, None, 7, None, None, None, None, None, {})
    # fmt: on
    assert len(rows) == len(TEMPLATES)


def test_cycle_edges_are_flagged_listed_and_loaded_not_looped_on(migrated) -> None:
    dsn, run = migrated
    rows = query(
        dsn,
        "select legacy_predecessor_id, in_cycle, cycle_template_ids "
        "from public.workflow_template_predecessors order by 1",
    )
    assert rows == [
        (1, False, None),
        (2, True, [13, 14, 15]),
        (3, True, [13, 14, 15]),
        (4, True, [13, 14, 15]),
        (5, True, [12]),
        (8, False, None),
    ]
    (results,) = query(
        dsn,
        "select results from migration.validation_results where run_id = '"
        + run.run_id
        + "' and entity = 'workflow_template_predecessors' and pass = 'validated'",
    )[0]
    reported = [
        r for r in results if r["rule"] == "workflow_template_predecessors.cycle_edges_reported"
    ]
    assert reported and reported[0]["success"] and reported[0]["unexpected_count"] == 4


def test_tasks_resolve_parents_and_keep_optional_ones_raw(migrated) -> None:
    dsn, _ = migrated
    rows = query(
        dsn,
        """
        select t.legacy_task_id, o.legacy_instruction_id, tpl.legacy_template_id, p.legacy_plan_id,
               f.legacy_file_id, a.legacy_user_id, t.is_done, t.note, t.jaw, t.legacy_plan_id,
               t.legacy_file_id, t.legacy_actor_id, t.metadata
        from public.workflow_tasks t
        join public.orders o on o.id = t.order_id
        join public.workflow_templates tpl on tpl.id = t.template_id
        left join public.treatment_plans p on p.id = t.treatment_plan_id
        left join public.files f on f.id = t.file_id
        left join public.profiles a on a.id = t.actor_id order by 1
        """,
    )
    # fmt: off
    assert rows == [
        (1, 201, 10, 401, 501, 3, True, "Done.", "both", 401, 501, 3, {}),
        (2, 201, 11, None, None, None, False, None, "upper", None, None, None, {}),
        (5, 202, 10, None, None, None, True, "Señal enviada", None, 402, 503, 99,
         {"legacy_jaw": 7, "legacy_text": MOJIBAKE}),
        (6, 202, 11, None, None, 3, True, None, "lower", None, None, 3, {}),
    ]
    # fmt: on


def test_audit_trail_lists_state_changes_and_task_completions_per_order(migrated) -> None:
    dsn, _ = migrated
    rows = query(
        dsn,
        """
        select a.occurred_at, a.event, a.detail, a.is_active, p.legacy_user_id, a.legacy_table,
               a.legacy_id
        from public.order_audit_trail a
        join public.orders o on o.id = a.order_id
        left join public.profiles p on p.id = a.actor_id
        where o.legacy_instruction_id = 201 order by a.occurred_at, a.legacy_table, a.legacy_id
        """,
    )
    assert rows == [
        (AT, "state_change", "treatment_active", True, 3, "dispatch_state", 1),
        (AT, "task_completed", "Submitted", None, 3, "dispatch_task", 1),
        (LATER, "state_change", "case_closed", False, None, "dispatch_state", 2),
    ]


def test_reconciliation_balances_and_a_rerun_changes_nothing(migrated) -> None:
    dsn, first = migrated
    fingerprint = "select md5(string_agg(t::text, '|' order by t.id)) from public.workflow_tasks t"
    before = query(dsn, fingerprint)
    second = run_phase4(dsn, "phase4-rerun")
    for entity, source, loaded, merged, quarantined in query(
        dsn,
        "select entity, source_rows, loaded_rows, merged_rows, quarantined_rows "
        f"from migration.reconciliation where run_id = '{first.run_id}'",
    ):
        assert source == loaded + merged + quarantined, entity
        assert quarantined == len(EXPECTED_QUARANTINE[entity]), entity
    assert query(
        dsn,
        "select sum(inserted_rows), sum(updated_rows) from migration.checkpoints "
        f"where run_id = '{second.run_id}'",
    ) == [(0, 0)]
    assert query(dsn, fingerprint) == before


def test_suites_match_the_transformed_tables(migrated) -> None:
    from tests.unit.test_phase3_transforms import check_suites_against_transformed

    run_phase_from_staging(migrated[0], PHASE_4, "phase4-columns", load=False)  # staging kept
    check_suites_against_transformed(
        migrated[0],
        PHASE_4.entities,
        {("order_state_history", "order_id"): "_order_resolution"},
    )


def test_row_level_security(migrated) -> None:
    """Per-order rows: staff, the order's doctor, the order's patient; reference data: all."""
    from tests.unit.test_phase3_transforms import as_user

    dsn, _ = migrated
    accounts = {user_id: str(uuid.uuid4()) for user_id in (1, 2, 3, 5)}
    with connect(dsn) as conn:
        conn.execute(
            "insert into public.profiles (legacy_user_id, username, profile_type) "
            "values (5, 'user5', 'patient')"
        )
        for user_id, auth_id in accounts.items():
            conn.execute(
                "update public.profiles set auth_user_id = %s where legacy_user_id = %s",
                (auth_id, user_id),
            )

    def visible(user_id: int, query: str) -> set[Any]:
        with connect(dsn) as conn:
            as_user(conn, accounts[user_id])
            return {r[0] for r in conn.execute(query)}

    tasks = "select legacy_task_id from public.workflow_tasks"
    history = "select legacy_state_id from public.order_state_history"
    trail = "select legacy_id from public.order_audit_trail"
    for user_id in (1, 2, 3):  # the orders' doctor, their patient, a technician (staff)
        assert visible(user_id, tasks) == {1, 2, 5, 6}, user_id
        assert visible(user_id, history) == {1, 2, 6}, user_id
    assert visible(5, tasks) == visible(5, history) == visible(5, trail) == set()
    assert len(visible(5, "select code from public.order_states")) == len(ORDER_STATES)
    assert len(visible(5, "select legacy_template_id from public.workflow_templates")) == len(
        TEMPLATES
    )
    with connect(dsn) as conn:
        conn.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select 1 from public.order_audit_trail")
