"""Phase 2 target schema and transform SQL, rule by rule, on a real PostgreSQL.

Each test builds a fresh database: the real schema files of phases 1 and 2 (applied twice to
prove idempotency), a few hand-made phase 1 target rows (offices, profiles, order types) for
the transforms to resolve parents against, and small staging tables shaped like the extract
step's (legacy column names and types) holding one row per edge case. Transforms run through
the engine's own ``run_transform``. The helpers at the top are reused by
``test_phase2_suites.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.entities import get_phase
from include.entities.phase2_relationships import (
    DOCTOR_OFFICES,
    FILES,
    JAWS,
    OFFICE_OWNERS,
    ORDERS,
    PROJECTS,
    TREATMENT_PLANS,
)
from include.entities.spec import EntitySpec
from include.sandbox import media_relative_path
from include.transforms import mime
from migration_ops import runs
from migration_ops.db import connect, read_sql
from migration_ops.transform import run_transform
from tests.unit.test_transform_sql import simulate_load

pytestmark = pytest.mark.e2e
PHASE_1, PHASE_2 = get_phase(1), get_phase(2)
AS_OF = "2025-11-01T00:00:00+00:00"
RUN_SETTINGS: dict[str, object] = {"run_id": "t", "as_of": AS_OF}
T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
UIDS = {n: uuid.UUID(int=n, version=4) for n in range(1, 20)}

# ---------------------------------------------------------------------------------------------
# phase 1 parents in the target, and staged legacy rows (legacy types, one row per edge case)
# ---------------------------------------------------------------------------------------------
PARENTS_SQL = """
insert into public.offices (legacy_office_id, name) values (1, 'A'), (2, 'B'), (3, 'C');
insert into public.profiles (legacy_user_id, username, profile_type)
values (10, 'doc10', 'doctor'), (11, 'doc11', 'doctor');
insert into public.profiles (legacy_user_id, legacy_patient_id, username, profile_type,
    patient_suffix, legacy_doctor_user_id, legacy_office_id, metadata)
values (100, 1000, 'p100', 'patient', '00BB', 10, 1, '{}'),
       (101, 1001, 'p101', 'patient', null, null, null, '{}'),
       (102, 1002, 'p102', 'patient', '51Bn', 10, 2, '{"other_legacy_patient_ids": [1003]}');
update public.profiles as p
set patient_doctor_id = d.id, patient_office_id = o.id
from public.profiles as d, public.offices as o
where d.legacy_user_id = p.legacy_doctor_user_id and o.legacy_office_id = p.legacy_office_id;
update public.order_types set legacy_course_id = 1 where code = 'main';
update public.order_types set legacy_course_id = 2 where code = 'refinement';
"""

STAGING_DDL = """
create schema if not exists staging;
create table staging.doctor_offices__dispatch_office_doctors (
    id integer, office_id integer, user_id integer);
create table staging.office_owners__dispatch_office (id integer, doctor_id integer);
create table staging.jaws__dispatch_jaw (
    id integer, bond_teeth varchar(16), extract_teeth varchar(16), reason text,
    product_id integer, labial boolean);
create table staging.jaws__dispatch_instruction (
    id integer, upper_jaw_id integer, lower_jaw_id integer);
create table staging.orders__dispatch_instruction (
    id integer, patient_id integer, course_id integer, status integer,
    submitted_at timestamptz, updated_at timestamptz, notes text, complaint text,
    conditions text, objective text, scanner_notes text, exports text, price numeric(10,2),
    model integer, scanner integer, cbct boolean, comprehensive boolean,
    accept_extraction boolean, deleted boolean, "order" integer, upper_jaw_id integer,
    lower_jaw_id integer, suffix varchar(16));
create table staging.projects__dispatch_project (
    id integer, uid uuid, name varchar(255), size bigint, type integer, status integer,
    creator_id integer, created_at timestamptz, public boolean);
create table staging.projects__dispatch_plan (id integer, instruction_id integer, project_id integer);
create table staging.treatment_plans__dispatch_plan (
    id integer, instruction_id integer, project_id integer, notes text, number integer,
    name varchar(255), original boolean);
create table staging.files__dispatch_file (
    id integer, uid uuid, name varchar(255), ext varchar(16), size bigint, type integer,
    instruction_id integer, created_at timestamptz, description text, product_id integer,
    parameters text, record_id integer, status integer);
"""

Z = "0" * 16
# fmt: off
STAGED: dict[str, list[tuple[Any, ...]]] = {
    # (id, office_id, user_id)
    "doctor_offices__dispatch_office_doctors": [
        (1, 1, 10),   # also the office's owner: one link
        (2, 2, 10),   # a doctor in several offices keeps every link
        (3, 99, 11),  # office not in the target
        (4, 1, 999),  # user not in the target
    ],
    # (id, doctor_id)
    "office_owners__dispatch_office": [
        (1, 10),    # shares m2m row 1's link
        (2, 11),    # owner without an m2m row: a link of its own
        (3, 999),   # owner not in the target
        (4, None),  # no owner, office not in the target
    ],
    # (id, bond_teeth, extract_teeth, reason, product_id, labial)
    "jaws__dispatch_jaw": [
        (1, "1" + "0" * 15, Z, None, 1, False),
        (2, Z, Z, "  lost tray ", 1, True),
        (3, Z, Z, "", None, False),        # unreferenced
        (4, Z, Z, None, None, False),      # upper in one order, lower in another
        (5, "0101", Z, None, None, False),  # not a 16-bit string
    ],
    # (id, upper_jaw_id, lower_jaw_id)
    "jaws__dispatch_instruction": [(500, 1, 2), (501, 4, None), (502, None, 4), (504, 5, None)],
    # (id, patient_id, course_id, status, submitted_at, updated_at, notes, complaint, conditions,
    #  objective, scanner_notes, exports, price, model, scanner, cbct, comprehensive,
    #  accept_extraction, deleted, order, upper_jaw_id, lower_jaw_id, suffix)
    "orders__dispatch_instruction": [
        (500, 1000, 1, 4, T0, T1, "  Hello ", "", None, "x", "", '{"stl": true}', Decimal("564.63"),
         1, 2, True, False, True, False, 3, 1, 2, " 00BB "),
        (501, 1001, None, 3, T0, None, "Café", None, None, None, None, "{bad", None, None, None,
         False, False, False, True, None, 4, None, None),
        (502, 1003, 2, 0, T0, T1, None, None, None, None, None, "null", None, None, None, False,
         False, False, False, None, None, 4, None),
        (503, 9999, 7, 1, T0, T1, None, None, None, None, None, "", None, None, None, False, False,
         False, False, None, None, None, None),
        (504, 1000, 1, 2, T0, T1, "FiancÃ© naÃ¯ve", None, None, None, None, None, None, None,
         None, False, False, False, False, None, 5, None, None),
        (505, 1002, 1, 1, T0, T1, None, None, None, None, None, None, None, None, None, False,
         False, False, True, None, None, None, None),
    ],
    # (id, uid, name, size, type, status, creator_id, created_at, public)
    "projects__dispatch_project": [
        (1, UIDS[1], "", 100, 3, 0, None, T0, False),
        (2, UIDS[2], " 528317 ", 100, 0, 0, None, T0, True),
        (3, UIDS[3], "  ", 100, 10, 2, 10, T0, False),
        (4, UIDS[4], "", 100, 3, 0, None, T0, False),
        (5, UIDS[5], "", 100, 3, 0, 999, T0, False),
        (6, UIDS[6], "", -5, 3, 0, None, T0, False),
    ],
    # (id, instruction_id, project_id)
    "projects__dispatch_plan": [(1, 500, 1), (2, 500, 1), (3, 500, 2), (4, 505, 2), (5, 503, 4),
                                (6, 500, 5)],
    # (id, instruction_id, project_id, notes, number, name, original)
    "treatment_plans__dispatch_plan": [
        (1, 500, 1, " first ", 1, "TP1", True),
        (2, 500, 1, None, 2, "", False),  # a revision sharing the project
        (3, 500, 2, None, 3, None, False),
        (4, 505, 2, None, 1, "TP1", True),
        (5, 503, 4, None, 1, None, True),  # order not in the target
        (7, 500, 99, None, 4, None, False),  # project not in the target
    ],
    # (id, uid, name, ext, size, type, instruction_id, created_at, description, product_id,
    #  parameters, record_id, status)
    "files__dispatch_file": [
        (1, UIDS[1], "136062118_shell_occlusion_l.stl", "stl", 10, 6, 500, T0, None, None, None, None, 1),
        (2, UIDS[2], "IMG_1.JPG", "", 10, 1, None, T0, " front ", None, None, 7, 1),
        (3, UIDS[3], "", "pdf", 10, 13, None, T0, None, None, '{"units": "mm"}', None, None),
        (4, UIDS[4], "a/b", "stl", 10, 2, 500, T0, None, None, None, None, 0),
        (5, UIDS[5], "x", "pdf", 10, 7, 503, T0, None, None, None, None, 1),
        (6, UIDS[6], "odd", "xyz", 10, 13, None, T0, None, None, "{bad", None, 1),
        (8, UIDS[8], "neg", "pdf", -1, 13, None, T0, None, None, None, None, 1),
        (9, UIDS[9], "..", "", 10, 13, None, T0, None, None, None, None, 1),
        (10, UIDS[10], "résumé (final)", "pdf", 10, 13, None, T0, None, None, None, None, 1),
    ],
}
# fmt: on

#: Rows the suites hold back, per entity (legacy id → rules); also what the SQL tests skip
#: when they simulate a load.
EXPECTED_QUARANTINE: dict[str, set[tuple[int, str]]] = {
    "doctor_offices": {
        (3, "doctor_offices.office_resolves"),
        (4, "doctor_offices.doctor_resolves"),
    },
    "office_owners": {
        (3, "office_owners.doctor_resolves"),
        (4, "office_owners.owner_present"),
        (4, "office_owners.doctor_resolves"),
        (4, "office_owners.office_resolves"),
    },
    "jaws": {(5, "jaws.bond_teeth_format")},
    "orders": {
        (503, "orders.patient_resolves"),
        (503, "orders.order_type_resolves"),
        (504, "orders.jaws_resolve"),
    },
    "projects": {
        (4, "projects.order_resolves"),
        (5, "projects.creator_resolves"),
        (6, "projects.size_not_negative"),
    },
    "treatment_plans": {
        (5, "treatment_plans.order_resolves"),
        (5, "treatment_plans.project_resolves"),
        (7, "treatment_plans.project_resolves"),
    },
    "files": {(5, "files.order_resolves"), (8, "files.size_not_negative")},
}


def prepare(dsn: str, *, schema_times: int = 2) -> None:
    """Phase 1 and 2 schemas (``schema_times`` over), the phase 1 parents, the staged rows."""
    for time in range(schema_times):  # later applications forced: they must change nothing
        runs.apply_schema(dsn, PHASE_1, force=time > 0)
        runs.apply_schema(dsn, PHASE_2, force=time > 0)
    with connect(dsn) as conn:
        conn.execute(PARENTS_SQL)
    stage_rows(dsn)


def stage_rows(dsn: str) -> None:
    """The hand-made legacy rows in staging (again after a load dropped them)."""
    with connect(dsn) as conn:
        conn.execute(STAGING_DDL)
        for table, rows in STAGED.items():
            with conn.cursor().copy(f"copy staging.{table} from stdin") as copy:
                for row in rows:
                    copy.write_row(row)


def held(entity: EntitySpec) -> set[int]:
    return {legacy_id for legacy_id, _ in EXPECTED_QUARANTINE[entity.name]}


def transform_and_load(dsn: str) -> None:
    """Every phase 2 transform in order, each followed by a plain load of the rows that pass."""
    for entity in PHASE_2.ordered():
        run_transform(dsn, entity, RUN_SETTINGS)
        simulate_load(dsn, entity, held(entity))


def rows_by_key(dsn: str, entity: EntitySpec) -> dict[int, dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(f"select * from staging.{entity.name}__transformed")
        return {row[entity.key]: row for row in cur.fetchall()}


@pytest.fixture
def phase2_db(make_db) -> str:
    dsn = make_db("p2sql")
    prepare(dsn)
    transform_and_load(dsn)
    return dsn


# ---------------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------------
def test_schema_applies_twice_with_keys_rls_and_triggers(phase2_db) -> None:
    tables = ("doctor_offices", "jaws", "orders", "projects", "treatment_plans", "files")
    with connect(phase2_db) as conn:
        for table in tables:
            rls, forced = conn.execute(
                "select relrowsecurity, relforcerowsecurity from pg_class where oid = %s::regclass",
                (f"public.{table}",),
            ).fetchone()
            assert rls, table
            columns = {
                r[0]
                for r in conn.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'public' and table_name = %s",
                    (table,),
                )
            }
            assert {"id", "metadata", "created_at", "updated_at"} <= columns, table
            trigger = conn.execute(
                "select 1 from pg_trigger where tgrelid = %s::regclass and tgname = %s",
                (f"public.{table}", f"{table}_touch_updated_at"),
            ).fetchone()
            assert trigger, table
        fks = {
            r[0]
            for r in conn.execute(
                "select conname from pg_constraint where contype = 'f' "
                "and conrelid = 'public.orders'::regclass"
            )
        }
        assert len(fks) == 6  # patient, doctor, office, order type, upper and lower jaw


def test_target_refuses_what_the_suites_quarantine(phase2_db) -> None:
    bad = [
        "insert into public.jaws (legacy_jaw_id, bond_teeth, extract_teeth) values (90, '01', '0')",
        "insert into public.jaws (legacy_jaw_id, bond_teeth, extract_teeth, flags) "
        f"values (91, '{Z}', '{Z}', '{{guessed}}')",
        "insert into public.files (legacy_file_id, file_name, mime_type, size_bytes, sha256) "
        "values (90, 'x', 'a/b', 1, 'abc')",
        "insert into public.files (legacy_file_id, file_name, mime_type, size_bytes) "
        "values (91, 'x', 'a/b', -1)",
        "insert into public.doctor_offices (doctor_id, office_id, legacy_link, "
        "legacy_doctor_user_id, legacy_office_id) select d.id, o.id, '1:2', 3, 4 "
        "from public.profiles d, public.offices o limit 1",
    ]
    for statement in bad:
        with connect(phase2_db) as conn, pytest.raises(psycopg.errors.IntegrityError):
            conn.execute(statement)


# ---------------------------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------------------------
def test_one_row_per_source_row_with_target_types(phase2_db) -> None:
    with connect(phase2_db) as conn:
        for entity in PHASE_2.entities:
            staged = conn.execute(
                f"select count(*) from staging.{entity.name}__{entity.primary_source.table}"
            ).fetchone()[0]
            transformed = conn.execute(
                f"select count(*) from staging.{entity.name}__transformed"
            ).fetchone()[0]
            assert transformed == staged, entity.name
            types = conn.execute(
                """
                select s.column_name, s.data_type, s.udt_name, t.data_type, t.udt_name
                from information_schema.columns as s
                join information_schema.columns as t
                  on t.table_schema = 'public' and t.table_name = %s
                 and t.column_name = s.column_name
                where s.table_schema = 'staging' and s.table_name = %s
                """,
                (entity.target_table.split(".")[1], f"{entity.name}__transformed"),
            ).fetchall()
            for column, s_type, s_udt, t_type, t_udt in types:
                assert (s_type, s_udt) == (t_type, t_udt), (entity.name, column)


def test_doctor_office_links_share_one_row_per_pair(phase2_db) -> None:
    m2m = rows_by_key(phase2_db, DOCTOR_OFFICES)
    owners = rows_by_key(phase2_db, OFFICE_OWNERS)
    assert m2m[1]["legacy_link"] == owners[1]["legacy_link"] == "1:10"
    assert owners[2]["legacy_link"] == "2:11" and owners[2]["doctor_id"] is not None
    assert m2m[3]["office_id"] is None and m2m[4]["doctor_id"] is None
    assert owners[4]["legacy_doctor_user_id"] is None and owners[4]["office_id"] is None
    with connect(phase2_db) as conn:
        links = conn.execute(
            "select legacy_link, legacy_office_doctor_id, legacy_owner_office_id, is_owner "
            "from public.doctor_offices order by legacy_link"
        ).fetchall()
    assert links == [("1:10", 1, 1, True), ("2:10", 2, None, False), ("2:11", None, 2, True)]


def test_jaw_arch_comes_from_the_instructions_and_is_never_defaulted(phase2_db) -> None:
    jaws = rows_by_key(phase2_db, JAWS)
    assert (jaws[1]["arch"], jaws[1]["flags"]) == ("upper", [])
    assert (jaws[2]["arch"], jaws[2]["replacement_reason"]) == ("lower", "lost tray")
    assert (jaws[3]["arch"], jaws[3]["flags"], jaws[3]["replacement_reason"]) == (
        None,
        ["unreferenced"],
        None,
    )
    assert (jaws[4]["arch"], jaws[4]["flags"]) == (None, ["arch_conflict"])
    assert jaws[5]["bond_teeth"] == "0101", "kept exactly: the suite quarantines it"


def test_orders_resolve_the_patient_and_take_doctor_and_office_from_them(phase2_db) -> None:
    orders = rows_by_key(phase2_db, ORDERS)
    with connect(phase2_db) as conn:
        profile = {
            r[0]: r[1:]
            for r in conn.execute(
                "select legacy_patient_id, id, patient_doctor_id, patient_office_id "
                "from public.profiles where legacy_patient_id is not null"
            )
        }
        types = dict(conn.execute("select legacy_course_id, id from public.order_types"))
        jaws = dict(conn.execute("select legacy_jaw_id, id from public.jaws"))
    first = orders[500]
    assert (first["patient_id"], first["doctor_id"], first["office_id"]) == profile[1000]
    assert first["order_number"] == "00BB-500" and first["suffix"] == "00BB"
    assert first["order_type_id"] == types[1] and first["status"] == "shipped"
    assert (first["upper_jaw_id"], first["lower_jaw_id"]) == (jaws[1], jaws[2])
    assert first["exports"] == {"stl": True} and first["notes"] == "Hello"
    assert first["complaint"] is None and first["flags"] == [] and first["metadata"] == {}
    assert first["deleted_at"] is None and first["legacy_order"] == 3

    no_care_team = orders[501]
    assert no_care_team["order_number"] == "501", "no valid suffix: the id alone"
    assert (no_care_team["doctor_id"], no_care_team["office_id"]) == (None, None)
    assert no_care_team["status"] is None and no_care_team["legacy_status"] == 3
    assert set(no_care_team["flags"]) == {
        "status_unknown",
        "doctor_missing",
        "office_missing",
        "order_type_missing",
    }
    assert no_care_team["exports"] is None and no_care_team["metadata"] == {
        "legacy_exports": "{bad"
    }
    assert no_care_team["deleted_at"] == dt.datetime.fromisoformat(AS_OF), "no updated_at: as_of"
    assert no_care_team["notes"] == "Café", "clean accented text is not touched"

    merged = orders[502]
    assert merged["patient_id"] == profile[1002][0], "an extra patient row of a merged profile"
    assert merged["order_number"] == "51Bn-502" and merged["exports"] is None
    assert merged["order_type_id"] == types[2] and merged["lower_jaw_id"] == jaws[4]

    assert orders[503]["patient_id"] is None and orders[503]["_unresolved_course_id"] == 7
    assert orders[504]["_unresolved_jaw_id"] == 5
    assert orders[504]["notes"] == "Fiancé naïve", "mojibake repaired by the documented rule"
    assert orders[504]["metadata"] == {"legacy_notes": "FiancÃ© naÃ¯ve"}
    assert orders[505]["deleted_at"] == T1, "soft-deleted: deleted_at = updated_at, kept"


def test_deleted_at_without_updated_at_keeps_the_first_runs_value(phase2_db) -> None:
    run_transform(phase2_db, ORDERS, {"run_id": "t2", "as_of": "2026-01-01T00:00:00+00:00"})
    assert rows_by_key(phase2_db, ORDERS)[501]["deleted_at"] == dt.datetime.fromisoformat(AS_OF)


def test_projects_link_to_the_one_order_of_their_plans(phase2_db) -> None:
    projects = rows_by_key(phase2_db, PROJECTS)
    with connect(phase2_db) as conn:
        orders = dict(conn.execute("select legacy_instruction_id, id from public.orders"))
    shared = projects[1]
    assert shared["order_id"] == orders[500] and shared["legacy_instruction_id"] == 500
    assert (shared["project_type"], shared["project_status"], shared["flags"]) == (
        "treatment_plan",
        "active",
        [],
    )
    assert shared["name"] is None and shared["legacy_uid"] == UIDS[1]
    several = projects[2]
    assert several["order_id"] is None and several["flags"] == ["several_orders"]
    assert several["metadata"] == {"legacy_instruction_ids": [500, 505]}
    assert several["name"] == "528317" and several["project_type"] == "unspecified"
    orphan = projects[3]
    assert orphan["order_id"] is None and orphan["creator_id"] is not None
    assert set(orphan["flags"]) == {"no_plan", "type_unknown", "status_unknown"}
    assert (orphan["project_type"], orphan["legacy_type"]) == (None, 10)
    assert (orphan["project_status"], orphan["legacy_status"]) == (None, 2)
    assert projects[4]["_unresolved_instruction_id"] == 503
    assert projects[5]["_unresolved_creator_user_id"] == 999


def test_treatment_plans_keep_every_revision(phase2_db) -> None:
    plans = rows_by_key(phase2_db, TREATMENT_PLANS)
    assert plans[1]["project_id"] == plans[2]["project_id"] is not None
    assert (plans[1]["notes"], plans[2]["name"], plans[2]["is_original"]) == ("first", None, False)
    assert plans[5]["order_id"] is None and plans[5]["project_id"] is None
    assert plans[7]["order_id"] is not None and plans[7]["project_id"] is None


def test_files_names_types_paths_and_keys(phase2_db) -> None:
    files = rows_by_key(phase2_db, FILES)
    double = files[1]
    assert double["file_name"] == "136062118_shell_occlusion_l.stl"
    assert (double["extension"], double["mime_type"]) == ("stl", "model/stl")
    assert double["metadata"] == {"legacy_file_name": "136062118_shell_occlusion_l.stl.stl"}
    assert double["order_id"] is not None and double["storage_path"] is None
    assert (files[2]["extension"], files[2]["mime_type"]) == ("jpg", "image/jpeg")
    assert files[2]["description"] == "front" and files[2]["order_id"] is None
    assert files[3]["file_name"] == f"{UIDS[3]}.pdf" and files[3]["parameters"] == {"units": "mm"}
    assert files[4]["_object_key"] == f"{UIDS[4]}/a_b.stl"
    assert files[5]["_unresolved_instruction_id"] == 503
    assert files[6]["flags"] == ["extension_unknown"]
    assert files[6]["mime_type"] == mime.DEFAULT_MIME_TYPE
    assert files[6]["metadata"]["legacy_parameters"] == "{bad"
    assert files[9]["_object_key"] == f"{UIDS[9]}/{UIDS[9]}"
    assert files[10]["_object_key"] == f"{UIDS[10]}/r_sum_final_.pdf"
    for legacy_id, row in files.items():
        name, ext = next((r[2], r[3]) for r in STAGED["files__dispatch_file"] if r[0] == legacy_id)
        assert row["_source_path"] == media_relative_path(str(row["legacy_uid"]), name, ext)
        assert re.fullmatch(r"[0-9a-f-]{36}/[A-Za-z0-9._-]+", row["_object_key"])


NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
EXTS = st.one_of(
    st.sampled_from(["stl", "STL", ".pdf", "tar.gz", "", " jpg ", "stl.stl", "a/b"]),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=8,
    ),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(st.tuples(NAMES, EXTS), min_size=1, max_size=15))
def test_sql_twins_agree_with_the_python_rules(phase2_db, pairs) -> None:
    """Arbitrary names and extensions: the SQL and Python agree on every derived value."""
    with connect(phase2_db) as conn:
        conn.execute("truncate staging.files__dispatch_file")
        with conn.cursor().copy(
            "copy staging.files__dispatch_file (id, uid, name, ext, size, type, created_at) from stdin"
        ) as copy:
            for n, (name, ext) in enumerate(pairs, start=1):
                copy.write_row((n, uuid.UUID(int=n, version=4), name, ext, 1, 1, T0))
    run_transform(phase2_db, FILES, RUN_SETTINGS)
    files = rows_by_key(phase2_db, FILES)
    for n, (name, ext) in enumerate(pairs, start=1):
        uid = str(uuid.UUID(int=n, version=4))
        row = files[n]
        assert row["extension"] == mime.real_extension(name, ext), (name, ext)
        assert row["mime_type"] == mime.mime_type(name, ext), (name, ext)
        assert row["file_name"] == mime.display_name(name, ext, uid), (name, ext)
        assert row["_source_path"] == media_relative_path(uid, name, ext), (name, ext)


def test_transforms_are_deterministic(phase2_db) -> None:
    def snapshot() -> dict[str, list[Any]]:
        with connect(phase2_db) as conn:
            return {
                e.name: conn.execute(
                    f"select t::text from staging.{e.name}__transformed as t order by 1"
                ).fetchall()
                for e in PHASE_2.entities
            }

    before = snapshot()
    for entity in PHASE_2.ordered():
        run_transform(phase2_db, entity, RUN_SETTINGS)
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# row level security
# ---------------------------------------------------------------------------------------------
def _as_user(conn: psycopg.Connection[Any], auth_uid: uuid.UUID) -> None:
    conn.execute("set local role authenticated")
    claims = {"role": "authenticated", "sub": str(auth_uid)}
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


def test_row_level_security_follows_the_orders(phase2_db) -> None:
    accounts = {10: uuid.uuid4(), 11: uuid.uuid4(), 100: uuid.uuid4()}
    with connect(phase2_db) as conn:
        for user_id, auth_id in accounts.items():
            conn.execute(
                "update public.profiles set auth_user_id = %s where legacy_user_id = %s",
                (auth_id, user_id),
            )

    def visible(user_id: int, query: str) -> set[Any]:
        with connect(phase2_db) as conn:
            _as_user(conn, accounts[user_id])
            return {r[0] for r in conn.execute(query)}

    orders = "select legacy_instruction_id from public.orders"
    assert visible(100, orders) == {500, 504} - held(ORDERS), "a patient: their own orders"
    assert visible(10, orders) == {500, 502, 505}, "a doctor: the orders they treat"
    assert visible(11, orders) == set()
    assert visible(100, "select legacy_jaw_id from public.jaws") == {1, 2}
    assert visible(100, "select legacy_file_id from public.files") == {1, 4}
    assert visible(10, "select legacy_plan_id from public.treatment_plans") == {1, 2, 3, 4}
    assert visible(10, "select legacy_link from public.doctor_offices") == {"1:10", "2:10"}
    with connect(phase2_db) as conn:
        conn.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select 1 from public.orders")
    with connect(phase2_db) as conn:
        _as_user(conn, accounts[10])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update public.orders set notes = 'x'")


@pytest.mark.parametrize(
    "path",
    [
        "target/200_phase2_relationships.sql",
        "load/office_owners__links.sql",
        *(e.transform_sql for e in PHASE_2.entities),
    ],
)
def test_sql_files_have_no_placeholders_or_now(path: str) -> None:
    text = read_sql(path)
    assert not re.search(r"%\(\w+\)s", text), "named placeholders: the engine passes no parameters"
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    if path.startswith("transform/"):
        assert "now()" not in body and "current_timestamp" not in body
        assert body.lstrip().startswith("drop table if exists staging.")
