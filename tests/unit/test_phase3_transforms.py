"""Phase 3 schema, transforms and suites, rule by rule, on a real PostgreSQL through the engine.

Each database gets the real phase 1 schema, a stand-in for the phase 2 tables with exactly
the contract's columns (``orders``, ``projects``, ``treatment_plans``, ``files``: the phase 3
SQL must work against the contract, not against one implementation of it), the real phase 3
schema (twice, to prove idempotency), hand-made parents and hand-made staging tables shaped
like the extract step's, one row per edge case. The phase then runs through the engine's own
steps: transform (with the generic-relation tables and text repair), GX validation with
quarantine, load, reconciliation.

The same records run against two ``django_content_type`` layouts whose ids differ: they must
resolve identically, because resolution goes by ``(app_label, model)``. Both layouts hold
namesakes, third-party models named like mapped ones (``users.user``, ``projects.project``),
with records whose target ids exist in the same-named mapped table: resolving on ``model``
alone would load them against the wrong row, so they must be quarantined as unmapped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

import psycopg
import pytest

from include.entities import get_phase
from include.entities.phase3_communication import (
    MESSAGES,
    PHASE_3,
    PLAN_COMMENTS,
    RECORD_TARGETS,
)
from include.entities.spec import EntitySpec, GenericRelation, SourceTable
from include.transforms.phase3_codes import (
    DEFAULT_MESSAGE_TYPE,
    MESSAGE_TYPES,
    PLAN_COMMENT_MESSAGE_TYPE,
)
from migration_ops import runs, transform
from migration_ops.db import connect, read_sql
from tests.unit.staged_runs import run_phase_from_staging

pytestmark = pytest.mark.e2e

#: The phase 2 contract, reduced to the columns phase 3 reads (see the module docstring).
PHASE_2_STAND_IN = """
create table public.orders (
    id uuid primary key default migration.new_id(),
    legacy_instruction_id integer unique,
    patient_id uuid references public.profiles (id),
    doctor_id uuid references public.profiles (id),
    office_id uuid references public.offices (id)
);
create table public.projects (
    id uuid primary key default migration.new_id(),
    legacy_project_id integer unique
);
create table public.treatment_plans (
    id uuid primary key default migration.new_id(),
    legacy_plan_id integer unique,
    order_id uuid references public.orders (id),
    project_id uuid references public.projects (id)
);
create table public.files (
    id uuid primary key default migration.new_id(),
    legacy_file_id integer unique
);
grant select on public.orders, public.projects, public.treatment_plans, public.files
    to authenticated;
"""

STAGING_DDL = """
create schema if not exists staging;
create table staging.messages__dispatch_record (
    id integer, target_id integer, type integer, created_at timestamptz, text text,
    author_id integer, target_type_id integer, group_id integer, public boolean
);
create table staging.messages__django_content_type (
    id integer, app_label varchar(100), model varchar(100)
);
create table staging.messages__dispatch_patient (id integer);
create table staging.messages__auth_user (id integer);
create table staging.messages__dispatch_instruction (id integer);
create table staging.messages__dispatch_project (id integer);
create table staging.messages__dispatch_plan (id integer);
create table staging.plan_comments__dispatch_comment (
    id integer, plan_id integer, author_id integer, text text, created_at timestamptz
);
create table staging.message_attachments__dispatch_record_attachments (
    id integer, record_id integer, file_id integer
);
"""

# Two content-type layouts: the same models under different ids (Django numbers them in
# creation order, so two databases disagree). Id 999 exists in neither.
LAYOUT_A: dict[tuple[str, str], int] = {
    ("admin", "logentry"): 1,
    ("auth", "permission"): 2,
    ("auth", "group"): 3,
    ("auth", "user"): 4,
    ("contenttypes", "contenttype"): 5,
    ("sessions", "session"): 6,
    ("dispatch", "patient"): 11,
    ("dispatch", "instruction"): 12,
    ("dispatch", "project"): 13,
    ("dispatch", "plan"): 14,
    ("dispatch", "case"): 15,
    # namesakes: same model name as a mapped relation (or an unmapped dispatch model), other app
    ("users", "user"): 16,
    ("projects", "project"): 17,
    ("filer", "file"): 18,
}
LAYOUT_B: dict[tuple[str, str], int] = {
    ct: 100 - number for ct, number in zip(LAYOUT_A, range(len(LAYOUT_A)), strict=True)
}
UNKNOWN_CONTENT_TYPE_ID = 999

AT = dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
MOJIBAKE = "Caf\u00c3\u00a9 con leche, por favor"  # "Café ..." decoded as Latin-1
JAPANESE = "矯正治療の計画を確認してください。"
THAI = "กรุณาตรวจสอบแผนการรักษา"
ACCENTED = "São Paulo: año nuevo, señora Muñoz"

# Parents in the target: profiles (legacy user id, legacy patient id), orders (legacy
# instruction id, patient's legacy user id), projects, plans (legacy plan id, instruction,
# project), files. Legacy ids staged for the relations include ids with no target row.
PROFILES = [(1, None, "doctor"), (2, 102, "patient"), (3, 103, "patient"), (4, None, "admin")]
ORDERS = [(201, 2), (202, 3)]
PROJECTS = [301]
PLANS = [(401, 201, 301)]
FILES = [501, 502]
LEGACY_IDS = {
    "dispatch_patient": [102, 103, 104],
    "auth_user": [1, 2, 3, 4, 5],
    "dispatch_instruction": [201, 202, 203],
    "dispatch_project": [301, 302],
    "dispatch_plan": [401, 402],
}


def records(layout: dict[tuple[str, str], int]) -> list[tuple[Any, ...]]:
    """(id, target_id, type, created_at, text, author_id, target_type_id, group_id, public)."""
    patient, user = layout[("dispatch", "patient")], layout[("auth", "user")]
    instruction, project = layout[("dispatch", "instruction")], layout[("dispatch", "project")]
    plan = layout[("dispatch", "plan")]
    # fmt: off
    return [
        (1, 102, 5, AT, "Approved the setup.", 1, patient, None, True),
        (2, 3, 3, AT, "Where is my tray?", 4, user, 3, None),
        (3, 201, 8, AT, "Skip to stage 3.", 1, instruction, None, False),
        (4, 301, 6, AT, "Project note.", 4, project, None, True),
        (5, 401, None, AT, "Plan note.", None, plan, None, None),
        (6, 102, 5, AT, "No target type.", 1, None, None, True),
        (7, 55, 5, AT, "A session.", 1, layout[("sessions", "session")], None, True),
        (8, 77, 5, AT, "A stale case.", 1, layout[("dispatch", "case")], None, True),
        (9, 102, 5, AT, "An id no content type has.", 1, UNKNOWN_CONTENT_TYPE_ID, None, True),
        (10, 999_999, 5, AT, "Dangling patient.", 1, patient, None, True),
        (11, 104, 5, AT, "Patient not migrated.", 1, patient, None, True),
        (12, 203, 5, AT, "Order not migrated.", 1, instruction, None, True),
        (13, 103, 99, AT, MOJIBAKE, 1, patient, None, True),
        (14, 103, 5, AT, JAPANESE, 5, patient, None, True),
        (15, 5, 3, AT, "User not migrated.", 4, user, None, True),
        (16, 103, 6, AT, THAI, 3, patient, None, True),
        (17, 103, 6, AT, ACCENTED, 3, patient, None, True),
        # namesakes pointing at ids that exist (and are migrated) in auth_user / dispatch_project
        (18, 3, 5, AT, "A namesake user.", 1, layout[("users", "user")], None, True),
        (19, 301, 5, AT, "A namesake project.", 1, layout[("projects", "project")], None, True),
        # no project 201, but an instruction 201: ids are looked up in the model's own table
        (20, 201, 5, AT, "Dangling project.", 1, project, None, True),
    ]
    # fmt: on


# (id, plan_id, author_id, text, created_at)
COMMENTS = [
    (1, 401, 1, "Se\u00c3\u00b1ora Mu\u00c3\u00b1oz: ok", AT),
    (2, 402, 1, "Plan not migrated.", AT),
    (3, 401, 5, None, AT),
]
# (id, record_id, file_id)
ATTACHMENTS = [(1, 1, 501), (2, 6, 501), (3, 2, 503), (4, 13, 502)]

EXPECTED_QUARANTINE = {
    "messages": {
        (6, "messages.target_type_present"),
        (7, "messages.target_type_mapped"),
        (8, "messages.target_type_mapped"),
        (9, "messages.target_type_mapped"),
        (10, "messages.target_exists"),
        (11, "messages.target_migrated"),
        (12, "messages.target_migrated"),
        (15, "messages.target_migrated"),
        (18, "messages.target_type_namesake"),
        (19, "messages.target_type_namesake"),
        (20, "messages.target_exists"),
    },
    "plan_comments": {(2, "plan_comments.plan_migrated")},
    "message_attachments": {
        (2, "message_attachments.message_migrated"),
        (3, "message_attachments.file_migrated"),
    },
}


def build(dsn: str, layout: dict[tuple[str, str], int]) -> None:
    """Schemas (phase 3 applied twice), parents and staged edge cases."""
    runs.apply_schema(dsn, get_phase(1))
    with connect(dsn) as conn:
        conn.execute(PHASE_2_STAND_IN)
    for again in (False, True):  # the second application forced: it must change nothing
        runs.apply_schema(dsn, PHASE_3, force=again)
    with connect(dsn) as conn:
        for user_id, patient_id, kind in PROFILES:
            conn.execute(
                "insert into public.profiles (legacy_user_id, legacy_patient_id, username, "
                "profile_type) values (%s, %s, %s, %s)",
                (user_id, patient_id, f"user{user_id}", kind),
            )
        for instruction_id, patient_user_id in ORDERS:
            conn.execute(
                "insert into public.orders (legacy_instruction_id, patient_id, doctor_id) "
                "select %s, p.id, d.id from public.profiles p, public.profiles d "
                "where p.legacy_user_id = %s and d.legacy_user_id = 1",
                (instruction_id, patient_user_id),
            )
        for project_id in PROJECTS:
            conn.execute(
                "insert into public.projects (legacy_project_id) values (%s)", (project_id,)
            )
        for plan_id, instruction_id, project_id in PLANS:
            conn.execute(
                "insert into public.treatment_plans (legacy_plan_id, order_id, project_id) "
                "select %s, o.id, p.id from public.orders o, public.projects p "
                "where o.legacy_instruction_id = %s and p.legacy_project_id = %s",
                (plan_id, instruction_id, project_id),
            )
        for file_id in FILES:
            conn.execute("insert into public.files (legacy_file_id) values (%s)", (file_id,))
        conn.execute(STAGING_DDL)
        staged: dict[str, list[tuple[Any, ...]]] = {
            "messages__dispatch_record": records(layout),
            "messages__django_content_type": [(i, a, m) for (a, m), i in layout.items()],
            "plan_comments__dispatch_comment": COMMENTS,
            "message_attachments__dispatch_record_attachments": ATTACHMENTS,
            **{f"messages__{t}": [(i,) for i in ids] for t, ids in LEGACY_IDS.items()},
        }
        for table, rows in staged.items():
            with conn.cursor().copy(f"copy staging.{table} from stdin") as copy:
                for row in rows:
                    copy.write_row(row)


def run_phase3(dsn: str, run_id: str) -> runs.RunContext:
    """The phase through the engine's steps (staging is filled by hand, not extracted)."""
    return run_phase_from_staging(dsn, PHASE_3, run_id)


def quarantine(dsn: str, run_id: str) -> dict[str, set[tuple[int, str]]]:
    found: dict[str, set[tuple[int, str]]] = {e.name: set() for e in PHASE_3.entities}
    with connect(dsn) as conn:
        for entity, legacy_id, rule in conn.execute(
            "select entity, legacy_id, rule from migration.quarantine where last_run_id = %s",
            (run_id,),
        ):
            found[entity].add((int(legacy_id), rule))
    return found


#: Each loaded message as legacy ids: {legacy record id: (type code, author user, patient
#: user, recipient user, order instruction, project, plan, target type)}.
MESSAGE_VIEW = """
select m.legacy_record_id, mt.code, a.legacy_user_id, p.legacy_user_id, r.legacy_user_id,
       o.legacy_instruction_id, pr.legacy_project_id, tp.legacy_plan_id, m.legacy_target_type
from public.messages m
join public.message_types mt on mt.id = m.message_type_id
left join public.profiles a on a.id = m.author_id
left join public.profiles p on p.id = m.patient_id
left join public.profiles r on r.id = m.recipient_id
left join public.orders o on o.id = m.order_id
left join public.projects pr on pr.id = m.project_id
left join public.treatment_plans tp on tp.id = m.treatment_plan_id
where m.legacy_record_id is not null
"""


def loaded_messages(dsn: str) -> dict[int, tuple[Any, ...]]:
    with connect(dsn) as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(MESSAGE_VIEW)}


@pytest.fixture(scope="module")
def migrated(pg_socket: str) -> dict[str, Any]:
    """Layout A run twice, layout B once, each in its own database."""
    from migration_ops import local_env

    result: dict[str, Any] = {}
    for name, layout in (("a", LAYOUT_A), ("b", LAYOUT_B)):
        dsn = local_env.ensure_database(pg_socket, f"t_phase3_sql_{name}", recreate=True)
        build(dsn, layout)
        result[name] = (dsn, run_phase3(dsn, f"phase3-{name}"))
    return result


# ---------------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------------
def test_schema_is_idempotent_and_seeds_exactly_the_catalog(migrated) -> None:
    dsn, _ = migrated["a"]
    with connect(dsn) as conn:
        seeded = conn.execute("select code, name, description from public.message_types").fetchall()
        assert set(seeded) == {(t.code, t.name, t.description) for t in MESSAGE_TYPES}
        before = conn.execute("select max(updated_at) from public.message_types").fetchone()
    runs.apply_schema(dsn, PHASE_3, force=True)  # a third application rewrites nothing
    with connect(dsn) as conn:
        assert conn.execute("select max(updated_at) from public.message_types").fetchone() == before
        for table in ("message_types", "messages", "message_attachments"):
            rls = conn.execute(
                "select relrowsecurity from pg_class where oid = %s::regclass", (f"public.{table}",)
            ).fetchone()
            assert rls == (True,), table
        unindexed = conn.execute(
            """
            select c.conrelid::regclass::text, a.attname
            from pg_constraint c
            join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
            where c.contype = 'f' and c.conrelid = any(array['public.messages'::regclass,
                'public.message_attachments'::regclass])
              and not exists (select 1 from pg_index i
                              where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1])
            """
        ).fetchall()
        assert unindexed == []


def test_default_and_plan_comment_types_are_the_ones_the_sql_names() -> None:
    codes = {t.code for t in MESSAGE_TYPES}
    assert DEFAULT_MESSAGE_TYPE in codes and PLAN_COMMENT_MESSAGE_TYPE in codes
    assert f"coalesce(rt.message_type, '{DEFAULT_MESSAGE_TYPE}')" in read_sql(
        MESSAGES.transform_sql
    )
    assert f"mt.code = '{PLAN_COMMENT_MESSAGE_TYPE}'" in read_sql(PLAN_COMMENTS.transform_sql)


def test_every_configured_fk_column_is_a_messages_column_the_transform_fills() -> None:
    sql_text = read_sql(MESSAGES.transform_sql)
    for relation in RECORD_TARGETS:
        assert f"when r.fk_column = '{relation.fk_column}'" in sql_text, relation
        assert relation.source in MESSAGES.sources, relation


# ---------------------------------------------------------------------------------------------
# rules through the engine
# ---------------------------------------------------------------------------------------------
def test_each_generic_relation_case_is_quarantined_under_its_own_rule(migrated) -> None:
    for name in ("a", "b"):
        dsn, run = migrated[name]
        assert quarantine(dsn, run.run_id) == EXPECTED_QUARANTINE, name


def test_records_resolve_to_explicit_foreign_keys(migrated) -> None:
    dsn, _ = migrated["a"]
    assert loaded_messages(dsn) == {
        # type, author, patient, recipient, order, project, plan, legacy target type
        1: ("clinical_note", 1, 2, None, None, None, None, "dispatch.patient"),
        2: ("support", 4, None, 3, None, None, None, "auth.user"),
        3: ("status_update", 1, 2, None, 201, None, None, "dispatch.instruction"),
        4: ("general", 4, None, None, None, 301, None, "dispatch.project"),
        5: ("general", None, 2, None, 201, 301, 401, "dispatch.plan"),
        13: ("general", 1, 3, None, None, None, None, "dispatch.patient"),
        14: ("clinical_note", None, 3, None, None, None, None, "dispatch.patient"),
        16: ("general", 3, 3, None, None, None, None, "dispatch.patient"),
        17: ("general", 3, 3, None, None, None, None, "dispatch.patient"),
    }


def test_content_type_ids_differ_but_resolution_is_the_same(migrated) -> None:
    assert set(LAYOUT_A.values()).isdisjoint(LAYOUT_B.values())
    assert loaded_messages(migrated["a"][0]) == loaded_messages(migrated["b"][0])


def test_text_is_kept_exactly_and_mojibake_repaired_with_the_original_in_metadata(migrated) -> None:
    dsn, _ = migrated["a"]
    with connect(dsn) as conn:
        rows = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "select coalesce(legacy_record_id, -legacy_comment_id), content, metadata "
                "from public.messages"
            )
        }
    assert rows[13] == ("Café con leche, por favor", {"legacy_text": MOJIBAKE})
    assert rows[-1] == ("Señora Muñoz: ok", {"legacy_text": COMMENTS[0][3]})
    for legacy_id, text in ((14, JAPANESE), (16, THAI), (17, ACCENTED)):
        assert rows[legacy_id] == (text, {}), legacy_id
    assert rows[-3] == (None, {})


def test_unknown_and_null_type_codes_become_general_with_the_raw_code_kept(migrated) -> None:
    dsn, _ = migrated["a"]
    with connect(dsn) as conn:
        rows = dict(
            conn.execute(
                "select legacy_record_id, legacy_type from public.messages "
                "where legacy_record_id in (5, 13)"
            ).fetchall()
        )
    assert rows == {5: None, 13: 99}


def test_plan_comments_hang_off_plan_order_project_and_patient(migrated) -> None:
    dsn, _ = migrated["a"]
    with connect(dsn) as conn:
        rows = conn.execute(
            """
            select m.legacy_comment_id, mt.code, a.legacy_user_id, p.legacy_user_id,
                   o.legacy_instruction_id, pr.legacy_project_id, tp.legacy_plan_id,
                   m.legacy_target_type, m.legacy_target_id, m.legacy_author_id
            from public.messages m
            join public.message_types mt on mt.id = m.message_type_id
            left join public.profiles a on a.id = m.author_id
            left join public.profiles p on p.id = m.patient_id
            left join public.orders o on o.id = m.order_id
            left join public.projects pr on pr.id = m.project_id
            left join public.treatment_plans tp on tp.id = m.treatment_plan_id
            where m.legacy_comment_id is not null order by 1
            """
        ).fetchall()
    assert rows == [
        (1, "plan_comment", 1, 2, 201, 301, 401, "dispatch.plan", 401, 1),
        (3, "plan_comment", None, 2, 201, 301, 401, "dispatch.plan", 401, 5),
    ]


def test_attachments_link_migrated_messages_to_migrated_files(migrated) -> None:
    dsn, _ = migrated["a"]
    with connect(dsn) as conn:
        rows = conn.execute(
            """
            select a.legacy_record_attachment_id, m.legacy_record_id, f.legacy_file_id
            from public.message_attachments a
            join public.messages m on m.id = a.message_id
            join public.files f on f.id = a.file_id order by 1
            """
        ).fetchall()
    assert rows == [(1, 1, 501), (4, 13, 502)]


def test_reconciliation_balances_and_a_rerun_changes_nothing(migrated) -> None:
    dsn, first = migrated["a"]
    with connect(dsn) as conn:
        before = conn.execute(
            "select md5(string_agg(m::text, '|' order by m.id)) from public.messages m"
        ).fetchone()
    second = run_phase3(dsn, "phase3-a-rerun")
    with connect(dsn) as conn:
        reconciliation = {
            r[0]: r[1:]
            for r in conn.execute(
                "select entity, source_rows, loaded_rows, merged_rows, quarantined_rows "
                "from migration.reconciliation where run_id = %s",
                (first.run_id,),
            )
        }
        changed = conn.execute(
            "select sum(inserted_rows), sum(updated_rows) from migration.checkpoints where run_id = %s",
            (second.run_id,),
        ).fetchone()
        after = conn.execute(
            "select md5(string_agg(m::text, '|' order by m.id)) from public.messages m"
        ).fetchone()
    sources = {"messages": 20, "plan_comments": 3, "message_attachments": 4}
    for entity, (source, loaded, merged, quarantined) in reconciliation.items():
        assert source == sources[entity] == loaded + merged + quarantined, entity
        assert quarantined == len(EXPECTED_QUARANTINE[entity]), entity
    assert changed == (0, 0)
    assert after == before
    assert quarantine(dsn, second.run_id) == EXPECTED_QUARANTINE


def test_a_parent_arriving_later_heals_the_quarantine(migrated) -> None:
    """The record about patient 104 loads once that patient's profile exists."""
    dsn, _ = migrated["b"]
    with connect(dsn) as conn:
        conn.execute(
            "insert into public.profiles (legacy_user_id, legacy_patient_id, username, profile_type)"
            " values (6, 104, 'user6', 'patient')"
        )
    healed = run_phase3(dsn, "phase3-b-healed")
    found = quarantine(dsn, healed.run_id)
    assert (11, "messages.target_migrated") not in found["messages"]
    with connect(dsn) as conn:
        resolved = conn.execute(
            "select resolved_run_id from migration.quarantine where entity = 'messages' "
            "and legacy_id = 11"
        ).fetchone()
    assert resolved == (healed.run_id,)
    assert loaded_messages(dsn)[11][2] == 6


#: A configuration that maps two models of one name: ``auth.user`` and a second user model
#: (``users.user``, as after a switch of ``AUTH_USER_MODEL``) both fill ``recipient_id``.
TWO_USER_MODELS = dataclasses.replace(
    MESSAGES,
    sources=(*MESSAGES.sources, SourceTable("users_user", ("id",))),
    generic_relations=(
        *RECORD_TARGETS,
        GenericRelation(
            "users",
            "user",
            fk_column="recipient_id",
            parent_table="public.profiles",
            parent_key="legacy_user_id",
            legacy_table="users_user",
        ),
    ),
)


def test_two_mapped_models_of_one_name_resolve_each_in_its_own_table(make_db) -> None:
    """users.user ids are looked up among users_user ids only, never among auth_user ids."""
    dsn = make_db("phase3_two_users")
    build(dsn, LAYOUT_A)
    with connect(dsn) as conn:
        conn.execute("create table staging.messages__users_user (id integer)")
        conn.execute("insert into staging.messages__users_user values (1), (2)")
    assert transform.run_transform(dsn, TWO_USER_MODELS, {}) == 20
    with connect(dsn) as conn:
        rows = conn.execute(
            "select t.legacy_record_id, t._target_resolution, p.legacy_user_id "
            "from staging.messages__transformed t left join public.profiles p "
            "on p.id = t.recipient_id where t.legacy_record_id in (2, 15, 18) order by 1"
        ).fetchall()
    # 18 points at users.user 3: auth_user 3 exists and is migrated, users_user 3 does not exist
    assert rows == [(2, "resolved", 3), (15, "not_migrated", None), (18, "missing_in_legacy", None)]


@pytest.mark.parametrize("entity", list(PHASE_3.entities), ids=lambda e: e.name)
def test_text_repair_targets_are_transformed_columns(entity: EntitySpec) -> None:
    sql_text = read_sql(entity.transform_sql)
    for repair in entity.text_repair:
        assert f"as {repair.column}," in sql_text


def check_suites_against_transformed(
    dsn: str, entities: tuple[EntitySpec, ...], covered: dict[tuple[str, str], str]
) -> None:
    """Every suite names real transformed columns; every NOT NULL target column is guarded.

    Args:
        dsn: a database holding the entities' transformed tables and target tables.
        entities: the entities to check.
        covered: ``(entity, target column)`` pairs guarded by a resolution-case rule instead
            of a not-null expectation, with the helper column that guards them.
    """
    from tests.unit.suite_helpers import TEXT_COMPARING, expectations_of, referenced_columns
    from tests.unit.test_suites import _columns

    with connect(dsn) as conn:
        for entity in entities:
            staged = _columns(conn, "staging", f"{entity.name}__transformed")
            target = _columns(conn, *entity.target_table.split("."))
            expectations = expectations_of(entity)
            for expectation in expectations:
                assert referenced_columns(expectation) <= set(staged), expectation["meta"]["rule"]
                if expectation["type"] == "expect_table_columns_to_match_set":
                    assert set(expectation["kwargs"]["column_set"]) == set(staged)
                if TEXT_COMPARING.search(expectation["type"]):
                    assert staged[expectation["kwargs"]["column"]]["type"] != "USER-DEFINED"
            assert {c for c in staged if not c.startswith("_")} <= set(target), entity.name
            required = {c for c, info in target.items() if not info["nullable"] and c in staged}
            guarded = {
                e["kwargs"]["column"]
                for e in expectations
                if e["type"] == "expect_column_values_to_not_be_null"
            }
            by_cases = {c for (name, c), helper in covered.items() if name == entity.name}
            assert required <= guarded | by_cases, (entity.name, required - guarded - by_cases)


def test_suites_match_the_transformed_tables(migrated) -> None:
    dsn = migrated["a"][0]
    run_phase_from_staging(dsn, PHASE_3, "phase3-a-columns", load=False)  # staging kept
    check_suites_against_transformed(dsn, PHASE_3.entities, {})


def as_user(conn: psycopg.Connection[Any], auth_uid: str | None) -> None:
    """Act as a signed-in Supabase user (role authenticated, the JWT's sub claim)."""
    conn.execute("set local role authenticated")
    claims = {"role": "authenticated", **({"sub": auth_uid} if auth_uid else {})}
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


def test_row_level_security(migrated) -> None:
    dsn, _ = migrated["a"]
    accounts = {user_id: str(uuid.uuid4()) for user_id, _, _ in PROFILES}
    with connect(dsn) as conn:
        for user_id, auth_id in accounts.items():
            conn.execute(
                "update public.profiles set auth_user_id = %s where legacy_user_id = %s",
                (auth_id, user_id),
            )
        conn.execute(
            "update public.profiles set patient_doctor_id = "
            "(select id from public.profiles where legacy_user_id = 1) where legacy_user_id = 2"
        )
        total = conn.execute("select count(*) from public.messages").fetchone()

    def visible(user_id: int, query: str) -> set[Any]:
        with connect(dsn) as conn:
            as_user(conn, accounts[user_id])
            return {r[0] for r in conn.execute(query)}

    messages = "select coalesce(legacy_record_id, -legacy_comment_id) from public.messages"
    attachments = "select legacy_record_attachment_id from public.message_attachments"
    # a doctor: what they wrote, their patients' messages, their orders' messages
    assert visible(1, messages) == {1, 3, 5, 13, -1, -3}
    # a patient: the messages about them that are not marked non-public (record 3 is)
    assert visible(2, messages) == {1, 5, -1, -3}
    assert visible(2, attachments) == {1}
    # another patient: also what they wrote and what was sent to them
    assert visible(3, messages) == {2, 13, 14, 16, 17}
    assert visible(3, attachments) == {4}
    assert (len(visible(4, messages)),) == total  # staff read everything
    assert len(visible(2, "select code from public.message_types")) == len(MESSAGE_TYPES)
    with connect(dsn) as conn:
        as_user(conn, None)
        assert conn.execute(messages).fetchall() == []
    with connect(dsn) as conn:
        as_user(conn, accounts[4])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update public.messages set content = 'x'")
    with connect(dsn) as conn:
        conn.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select 1 from public.messages")
