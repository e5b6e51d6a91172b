"""Phase 1 target schema and transform SQL, rule by rule, on a real PostgreSQL.

Each test builds a fresh database: the schema files (000, a stand-in for 010, 100 applied
twice to prove idempotency), small hand-made staging tables shaped like the extract step's
(legacy column names and types, no constraints) holding one row per edge case, then runs the
transforms through the engine's own ``run_transform``. The helpers at the top are reused by
``test_suites.py``.
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
from psycopg import sql

from include.entities.phase1_core import OFFICES, ORDER_TYPES, PHASE_1, PROFILES
from include.entities.spec import EntitySpec
from include.transforms.reference import (
    COUNTRY_KEY_SQL,
    GENDERS,
    PATIENT_STATUSES,
    PROFILE_TYPES,
    country_key,
)
from migration_ops import load
from migration_ops.db import connect, read_sql, run_sql_file
from migration_ops.transform import create_reference_tables, run_transform

AS_OF = "2025-11-01T00:00:00+00:00"
RUN_SETTINGS: dict[str, object] = {"run_id": "t", "as_of": AS_OF}

# ---------------------------------------------------------------------------------------------
# staging fixtures: legacy types as in legacy_schema.sql, one row per edge case
# ---------------------------------------------------------------------------------------------
STAGING_DDL = """
create schema if not exists staging;
create table staging.offices__dispatch_office (
    id integer, doctor_id integer, name varchar(255), address varchar(255), apt varchar(64),
    city varchar(128), state varchar(64), zip varchar(20), country varchar(64),
    phone varchar(32), tax_rate numeric(8,4), valid boolean, sq_customer_id varchar(255),
    emails boolean
);
create table staging.profiles__auth_user (
    id integer, password varchar(128), last_login timestamptz, is_superuser boolean,
    username varchar(150), first_name varchar(150), last_name varchar(150), email varchar(254),
    is_staff boolean, is_active boolean, date_joined timestamptz
);
create table staging.profiles__auth_user_groups (id integer, user_id integer, group_id integer);
create table staging.profiles__dispatch_patient (
    id integer, user_id integer, doctor_id integer, office_id integer, birthdate date,
    sex integer, status integer, archived boolean, suspended boolean, schemes text,
    suffix varchar(10), submitted_at timestamptz, updated_at timestamptz
);
create table staging.order_types__dispatch_course (
    id integer, name varchar(255), type integer, customization text
);
"""

# fmt: off
# (id, doctor_id, name, address, apt, city, state, zip, country, phone, tax_rate, valid,
#  sq_customer_id, emails)
OFFICE_ROWS: list[tuple[Any, ...]] = [
    (1, 1, "Smile Dental", "1 Main St", "Suite 2", "Austin", "TX", "78701", "U.S.A.",
     "555-0100", Decimal("10.2500"), True, "SQ1", True),
    (2, 1, "Bay Ortho", None, None, None, None, None, "US", None, Decimal("0.0825"), True,
     None, False),
    (3, 2, "No Country", None, None, None, None, None, None, None, Decimal("0"), True, "", True),
    (4, 2, "Tokyo Ortho", None, None, None, None, None, "Japan", None, Decimal("150.0000"),
     True, None, True),
    (5, 2, "Osaka Ortho", None, None, None, None, None, "  japan ", None, Decimal("-0.0500"),
     True, None, True),
    (6, 2, "Atlantis", None, None, None, None, None, "Atlantis", None, Decimal("1.0000"), True,
     None, True),
    (7, 2, "   ", "  ", None, None, None, None, "United States", None, Decimal("7.0000"),
     False, None, False),
    (8, 2, "Hanoi", None, None, None, None, None, "Viet Nam", None, Decimal("0.1000"), True,
     None, True),
    (9, 2, "Ambiguous", None, None, None, None, None, "IN", None, Decimal("0.0500"), True,
     None, True),
    (10, 2, "Blank Country", None, None, None, None, None, "   ", None, Decimal("0.0500"), True,
     None, True),
    (11, 2, "Rate Missing", None, None, None, None, None, "USA", None, None, True, None, True),
    (12, 2, "Thousand", None, None, None, None, None, "Thailand", None, Decimal("1000.0000"),
     True, None, True),
]

JOINED = dt.datetime(2019, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

# (id, password, last_login, is_superuser, username, first_name, last_name, email, is_staff,
#  is_active, date_joined)
USER_ROWS: list[tuple[Any, ...]] = [
    (1, "pbkdf2_sha256$1", JOINED, False, "drsmith", "Ann", "Smith", " Dr.Smith@Clinic.COM ",
     False, True, JOINED),
    (2, "h", None, False, "multi", "Multi", "Group", "", False, True, JOINED),
    (3, "h", None, False, "boss", "Big", "Boss", "", False, True, JOINED),
    (4, "h", None, True, "root", "Root", "User", "", False, True, JOINED),
    (5, "h", None, False, "staffer", "Staff", "Er", "", True, True, JOINED),
    (6, "h", None, False, "pat6", "Pat", "Six", "pat6@example.com", False, True, JOINED),
    (7, "h", None, False, "nobody", "No", "Body", "", False, False, JOINED),
    (8, "h", None, False, "grouppatient", "Group", "Patient", "", False, True, JOINED),
    (9, "h", None, False, "pat9", "Pat", "Nine", "not-an-email", False, True, JOINED),
    (10, "h", None, False, "pat10", "Pat", "Ten", "john@clinic", False, True, JOINED),
    (11, "h", None, False, "   ", "Blank", "Username", "", False, True, JOINED),
    (12, "h", None, False, "qa.doctor", "Qa", "Doctor", "qa@brius.com", False, True, JOINED),
    (13, "h", None, False, "tech", "Tech", "Nician", "tech@brius.com", False, True, JOINED),
    (14, "h", None, False, "demo_doctor", "null", "", "", False, True, JOINED),
    (15, "h", None, False, "doctorpatient", "Doc", "Patient", "", False, True, JOINED),
    (16, "h", None, False, "pat16", " NULL ", "Sixteen", "MIXED@Mechanodontics.com", False, True,
     JOINED),
    (17, "h", None, False, "obrien", "Sean", "O'Brien", "o'brien@example.com", False, True,
     JOINED),
    (18, "h", None, False, "patdoc", "Pat", "Doc", "", False, True, JOINED),
    (19, "h", None, True, "patroot", "Pat", "Root", "", False, True, JOINED),
    (20, "h", None, False, "docshort", "Doc", "Short", "", False, True, JOINED),
    # one user per §1b rule and per boundary between two neighbouring rules
    (21, "h", None, False, "adminonly", "Admin", "Only", "", False, True, JOINED),
    (22, "h", None, False, "masteronly", "Master", "Only", "", False, True, JOINED),
    (23, "h", None, False, "staffpatient", "Staff", "Patient", "", True, True, JOINED),
    (24, "h", None, True, "rootpatient", "Root", "Patient", "", False, True, JOINED),
    (25, "h", None, True, "rootadmin", "Root", "Admin", "", False, True, JOINED),
    (26, "h", None, True, "rootstaff", "Root", "Staff", "", True, True, JOINED),
    (27, "h", None, False, "staffrow", "Staff", "Row", "", True, True, JOINED),
    (28, "h", None, False, "unmapped", "Un", "Mapped", "", False, True, JOINED),
    (29, "h", None, False, "grouprow", "Group", "Row", "", False, True, JOINED),
]

# (id, user_id, group_id)
GROUP_ROWS: list[tuple[int, int, int]] = [
    (1, 1, 2),
    (2, 2, 1), (3, 2, 2), (4, 2, 11),
    (5, 3, 4), (6, 3, 5),
    (7, 4, 3),
    (8, 8, 1),
    (9, 12, 2),
    (10, 13, 11),
    (11, 14, 2),
    (12, 15, 2),
    (13, 18, 2),
    (14, 19, 2),
    (15, 20, 2),
    (16, 21, 4),
    (17, 22, 5),
    (18, 23, 1),
    (19, 24, 1),
    (20, 25, 4),
    (21, 28, 3),
    (22, 29, 1),
]

SUBMITTED = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
UPDATED = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

# (id, user_id, doctor_id, office_id, birthdate, sex, status, archived, suspended, schemes,
#  suffix, submitted_at, updated_at)
PATIENT_ROWS: list[tuple[Any, ...]] = [
    (101, 6, 1, 1, dt.date(1990, 5, 1), 2, 1, False, False, '{"plan": "A"}', "00BB", SUBMITTED,
     UPDATED),
    (102, 9, 1, 2, dt.date(1850, 1, 1), 7, 99, True, True, "{bad json", "51Bnx", None, None),
    (110, 10, 11, 999, dt.date(2030, 1, 1), None, 4, False, False, "", None, None, None),
    (105, 10, 1, 1, dt.date(2025, 11, 1), 0, 10, False, False, "null", " 51Bn ", None, None),
    (103, 15, 1, None, None, 1, 2, False, False, None, "", None, None),
    (104, 16, None, 1, None, None, None, False, None, "[1, 2]", "AB-1", None, None),
    (106, 18, 1, 1, None, 1, 1, False, False, None, "00CC", None, None),
    (107, 19, 1, 1, None, 2, 1, False, False, None, "12ab", None, None),
    (108, 20, 1, 1, None, 2, 1, False, False, None, "5Bn", None, None),
    (109, 27, None, None, None, None, None, False, False, None, None, None, None),
    (111, 29, None, None, None, None, None, False, False, None, "5Bn", None, None),
]

# (id, name, type, customization)
COURSE_ROWS: list[tuple[Any, ...]] = [
    (1, "Main", 1, '{"steps": 3}'),
    (2, " Refinement ", 1, None),
    (3, "Replacement", 2, "{oops"),
    (4, "", None, ""),
    (7, "Invoice", None, None),
    (8, "Merchandise", None, None),
    (12, "Night guard", 5, "null"),
    (13, "  ", None, None),
]
# fmt: on


def apply_schema(dsn: str, *, times: int = 2) -> None:
    """000, a stand-in for 010 (only its schema), then 100; ``times`` over to prove idempotency."""
    for _ in range(times):
        with connect(dsn) as conn:
            run_sql_file(conn, "target/000_supabase_compat.sql")
            conn.execute("create schema if not exists migration")
            run_sql_file(conn, "target/100_phase1_core.sql")


def load_staging(dsn: str) -> None:
    """Create the staged legacy tables and fill them with the edge-case rows."""
    tables = [
        ("offices__dispatch_office", OFFICE_ROWS),
        ("profiles__auth_user", USER_ROWS),
        ("profiles__auth_user_groups", GROUP_ROWS),
        ("profiles__dispatch_patient", PATIENT_ROWS),
        ("order_types__dispatch_course", COURSE_ROWS),
    ]
    with connect(dsn) as conn:
        conn.execute(STAGING_DDL)
        for table, rows in tables:
            with conn.cursor().copy(f"copy staging.{table} from stdin") as copy:
                for row in rows:
                    copy.write_row(row)


def prepare_phase1(dsn: str, *, schema_times: int = 2) -> None:
    """Schema plus staged edge cases (no transform yet)."""
    apply_schema(dsn, times=schema_times)
    load_staging(dsn)


def transform_all(dsn: str) -> dict[str, int]:
    """Run the three phase 1 transforms through the engine; rows per entity."""
    return {e.name: run_transform(dsn, e, RUN_SETTINGS) for e in PHASE_1.ordered()}


def rows_by_key(dsn: str, entity: EntitySpec) -> dict[int, dict[str, Any]]:
    """The transformed rows of ``entity`` as ``{legacy id: {column: value}}``."""
    with connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(f"select * from staging.{entity.name}__transformed")
        return {row[entity.key]: row for row in cur.fetchall()}


def simulate_load(dsn: str, entity: EntitySpec, skip: set[int]) -> None:
    """Load the transformed rows (minus ``skip``, standing for the quarantine) into the target.

    Through the product's own upsert (``include/sql/load/upsert.sql``), from a ``__validated``
    table built the way the validate step builds it; no run bookkeeping, no post-load SQL.
    """
    validated = sql.Identifier("staging", f"{entity.name}__validated")
    with connect(dsn) as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(validated))
        conn.execute(
            sql.SQL("create table {} as select * from {} where not ({} = any(%s))").format(
                validated,
                sql.Identifier("staging", f"{entity.name}__transformed"),
                sql.Identifier(entity.key),
            ),
            (list(skip) or [-1],),
        )
        load.upsert_validated(conn, entity)


@pytest.fixture
def phase1_db(make_db) -> str:
    dsn = make_db("p1sql")
    prepare_phase1(dsn)
    transform_all(dsn)
    return dsn


# ---------------------------------------------------------------------------------------------
# schema: 000 and 100
# ---------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_schema_applies_twice_and_creates_the_contract(make_db) -> None:
    dsn = make_db("p1schema")
    apply_schema(dsn, times=3)
    with connect(dsn) as conn:
        for role in ("anon", "authenticated", "service_role"):
            assert conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        for fn in (
            "auth.uid()",
            "auth.jwt()",
            "auth.role()",
            "migration.new_id()",
            "migration.try_jsonb(text)",
            "migration.touch_updated_at()",
        ):
            assert conn.execute("select to_regprocedure(%s)", (fn,)).fetchone()[0], fn
        for type_name, labels in (
            ("profile_type", PROFILE_TYPES),
            ("gender", GENDERS),
            ("patient_status", PATIENT_STATUSES),
        ):
            got = conn.execute(
                "select enum_range(null::public." + type_name + ")::text[]"
            ).fetchone()[0]
            assert tuple(got) == labels
        seeded = conn.execute(
            "select code, name, is_order_type, legacy_course_id"
            " from public.order_types order by code"
        ).fetchall()
        assert {r[0] for r in seeded} == {
            "main",
            "refinement",
            "replacement",
            "retainer",
            "emergency",
        }
        assert all(r[2] and r[3] is None for r in seeded)
        for table in ("offices", "profiles", "order_types"):
            rls, comment = conn.execute(
                "select c.relrowsecurity, obj_description(c.oid, 'pg_class') from pg_class c "
                "where c.oid = %s::regclass",
                (f"public.{table}",),
            ).fetchone()
            assert rls and comment, table
            unique = conn.execute(
                "select count(*) from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
                "and a.attnum = i.indkey[0] where i.indrelid = %s::regclass and i.indisunique "
                "and i.indnatts = 1 and a.attname like 'legacy\\_%%\\_id'",
                (f"public.{table}",),
            ).fetchone()[0]
            assert unique >= 1, f"{table} needs a unique legacy id"
        # every fk column is indexed
        unindexed = conn.execute(
            """
            select c.conrelid::regclass::text, a.attname
            from pg_constraint c
            join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
            where c.contype = 'f' and c.connamespace = 'public'::regnamespace
              and not exists (select 1 from pg_index i
                              where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1])
            """
        ).fetchall()
        assert unindexed == []


@pytest.mark.e2e
def test_compat_layer_leaves_existing_supabase_objects_alone(make_db) -> None:
    dsn = make_db("p1compat")
    with connect(dsn) as conn:  # what a real project already has: a different auth.uid()
        conn.execute("create schema auth")
        conn.execute(
            "create function auth.uid() returns uuid language sql stable "
            "as $$ select '00000000-0000-0000-0000-000000000001'::uuid $$"
        )
    apply_schema(dsn)
    with connect(dsn) as conn:
        assert str(conn.execute("select auth.uid()").fetchone()[0]).endswith("0001")


@pytest.mark.e2e
def test_helpers(make_db) -> None:
    dsn = make_db("p1helpers")
    apply_schema(dsn, times=1)
    with connect(dsn) as conn:
        new_id = conn.execute("select migration.new_id()").fetchone()[0]
        has_v7 = conn.execute(
            "select to_regprocedure('pg_catalog.uuidv7()') is not null"
        ).fetchone()[0]
        assert isinstance(new_id, uuid.UUID) and new_id.version == (7 if has_v7 else 4)
        cases = {
            '{"a": 1}': {"a": 1},
            "[1, 2]": [1, 2],
            "{bad": None,
            "": None,
            '"\\u0000"': None,  # valid json text, not representable in jsonb
        }
        for text, expected in cases.items():
            assert conn.execute("select migration.try_jsonb(%s)", (text,)).fetchone()[0] == expected
        assert conn.execute("select migration.try_jsonb(null)").fetchone()[0] is None
        # claims as postgrest sets them
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": "11111111-1111-1111-1111-111111111111", "role": "authenticated"}),),
        )
        uid, role, jwt = conn.execute("select auth.uid(), auth.role(), auth.jwt()").fetchone()
        assert str(uid) == "11111111-1111-1111-1111-111111111111"
        assert role == "authenticated" and jwt["role"] == "authenticated"


@pytest.mark.e2e
def test_touch_trigger_only_moves_updated_at_on_real_changes(make_db) -> None:
    dsn = make_db("p1touch")
    apply_schema(dsn, times=1)
    with connect(dsn) as conn:
        conn.execute(
            "insert into public.offices (legacy_office_id, name, updated_at) "
            "values (1, 'a', '2000-01-01')"
        )
        conn.execute("update public.offices set name = 'a'")
        same = conn.execute("select updated_at from public.offices").fetchone()[0]
        assert same.year == 2000
        conn.execute("update public.offices set name = 'b'")
        moved = conn.execute("select updated_at from public.offices").fetchone()[0]
        assert moved.year > 2000


# ---------------------------------------------------------------------------------------------
# transforms: shape
# ---------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_one_row_per_source_row_with_target_types(phase1_db) -> None:
    counts = transform_all(phase1_db)  # rerunnable: a second run rebuilds the same tables
    assert counts == {
        "offices": len(OFFICE_ROWS),
        "profiles": len(USER_ROWS),
        "order_types": len(COURSE_ROWS),
    }
    with connect(phase1_db) as conn:
        for entity in PHASE_1.entities:
            table = entity.target_table.split(".")[1]
            mismatches = conn.execute(
                """
                select s.attname, format_type(s.atttypid, s.atttypmod),
                       format_type(t.atttypid, t.atttypmod)
                from pg_attribute s
                left join pg_attribute t
                  on t.attrelid = %s::regclass and t.attname = s.attname and not t.attisdropped
                where s.attrelid = %s::regclass and s.attnum > 0 and not s.attisdropped
                  and s.attname not like '\\_%%'
                  and format_type(s.atttypid, s.atttypmod)
                      is distinct from format_type(t.atttypid, t.atttypmod)
                """,
                (f"public.{table}", f"staging.{entity.name}__transformed"),
            ).fetchall()
            assert mismatches == [], entity.name
            duplicate = conn.execute(
                f"select {entity.key} from staging.{entity.name}__transformed "
                f"group by 1 having count(*) > 1"
            ).fetchall()
            assert duplicate == []


@pytest.mark.e2e
def test_transforms_are_deterministic(phase1_db) -> None:
    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        with connect(phase1_db) as conn:
            return {
                e.name: conn.execute(
                    f"select * from staging.{e.name}__transformed order by {e.key}"
                ).fetchall()
                for e in PHASE_1.entities
            }

    before = snapshot()
    transform_all(phase1_db)
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# offices
# ---------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_offices_tax_rate_and_country(phase1_db) -> None:
    rows = rows_by_key(phase1_db, OFFICES)
    expected = {
        # id: (tax_rate, country_code, metadata)
        1: (Decimal("0.1025"), "US", {"legacy_tax_rate": 10.25, "legacy_country": "U.S.A."}),
        2: (Decimal("0.0825"), "US", {}),
        3: (Decimal("0"), None, {}),
        4: (Decimal("1.5"), "JP", {"legacy_tax_rate": 150, "legacy_country": "Japan"}),
        5: (Decimal("-0.05"), "JP", {"legacy_country": "japan"}),
        6: (Decimal("1"), None, {"legacy_country": "Atlantis"}),
        7: (Decimal("0.07"), "US", {"legacy_tax_rate": 7, "legacy_country": "United States"}),
        8: (Decimal("0.1"), "VN", {"legacy_country": "Viet Nam"}),
        9: (Decimal("0.05"), None, {"legacy_country": "IN"}),
        10: (Decimal("0.05"), None, {}),
        11: (None, "US", {"legacy_country": "USA"}),
        12: (Decimal("10"), "TH", {"legacy_tax_rate": 1000, "legacy_country": "Thailand"}),
    }
    for office_id, (tax, code, metadata) in expected.items():
        row = rows[office_id]
        assert row["tax_rate"] == tax, office_id
        assert row["country_code"] == code, office_id
        assert row["metadata"] == metadata, office_id


@pytest.mark.e2e
def test_offices_plain_columns(phase1_db) -> None:
    rows = rows_by_key(phase1_db, OFFICES)
    first = rows[1]
    assert (
        first["name"],
        first["address"],
        first["apartment"],
        first["city"],
        first["state"],
        first["zip_code"],
        first["phone"],
    ) == ("Smile Dental", "1 Main St", "Suite 2", "Austin", "TX", "78701", "555-0100")
    assert first["square_customer_id"] == "SQ1" and first["legacy_owner_user_id"] == 1
    assert first["is_valid"] is True and first["email_notifications"] is True
    assert rows[3]["square_customer_id"] is None  # '' -> NULL
    assert rows[7]["name"] is None and rows[7]["address"] is None  # blank -> NULL
    assert rows[7]["is_valid"] is False and rows[7]["email_notifications"] is False


@pytest.mark.e2e
def test_country_key_sql_matches_python(make_db) -> None:
    dsn = make_db("p1country")
    query = "select " + COUNTRY_KEY_SQL.format(column="%s::text")
    with connect(dsn) as conn:

        def sql_key(text: str) -> str | None:
            return conn.execute(query, (text,)).fetchone()[0]

        for text in ["U.S.A.", " usa ", "Việt Nam", "日本", "", "İstanbul", "ß-land", "a\tb"]:
            assert sql_key(text) == country_key(text), text

        @settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(
            st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
        )
        def check(text: str) -> None:
            assert sql_key(text) == country_key(text)

        check()


# ---------------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_profile_typing(phase1_db) -> None:
    """Every rule of legacy-system.md §1b, in its order, one user at least per rule and per
    boundary between neighbouring rules (the user meets both; the earlier rule must win)."""
    rows = rows_by_key(phase1_db, PROFILES)
    expected = {
        # 0. a patient row *and* a valid suffix make a patient, whatever the groups or flags
        6: "patient",  # no group, no flag, suffix 00BB
        10: "patient",  # suffix ' 51Bn ' (trimmed), no group
        16: "patient",  # patient row with suffix AB-1 (not valid) and no group: rule 4
        18: "patient",  # group 2 (doctors) + patient row with suffix 00CC
        19: "patient",  # is_superuser + group 2 + patient row with suffix 12ab
        # 1. groups 2, 11, 4, 5 (several: the highest group id wins)
        1: "doctor",  # group 2 only
        12: "doctor",
        14: "doctor",
        13: "technician",  # group 11 only
        21: "admin",  # group 4 only
        22: "master",  # group 5 only
        2: "technician",  # groups 1, 2, 11: the highest mapped group wins
        3: "master",  # groups 4, 5
        25: "admin",  # group 4 + is_superuser: the group comes before the flag
        15: "doctor",  # group 2 wins over a patient row without a suffix; fields still merged
        20: "doctor",  # group 2 + patient row whose suffix (5Bn) is not valid: groups decide
        # 2. is_superuser -> master, then is_staff -> admin
        4: "master",  # only an unmapped group (3), is_superuser
        26: "master",  # is_superuser and is_staff: is_superuser first
        5: "admin",  # is_staff
        24: "master",  # group 1 + is_superuser: the flags come before group 1
        23: "admin",  # group 1 + is_staff
        27: "admin",  # is_staff + a patient row without a suffix: the flag first
        # 3. group 1 -> patient
        8: "patient",  # group 1 without a patient row
        29: "patient",  # group 1 + a patient row whose suffix (5Bn) is not valid
        # 4. a patient row -> patient
        9: "patient",  # no group, no flag, suffix 51Bnx (not valid)
        # 5. nothing: never guessed
        7: "unclassified",
        28: "unclassified",  # an unmapped group (3) only
    }
    assert {k: rows[k]["profile_type"] for k in expected} == expected
    assert rows[2]["metadata"]["legacy_group_ids"] == [1, 2, 11]
    assert rows[4]["metadata"]["legacy_group_ids"] == [3]
    assert rows[28]["metadata"]["legacy_group_ids"] == [3]
    # group 1 did not type a staff account: the group is reported
    assert rows[23]["metadata"]["legacy_group_ids"] == [1]
    assert rows[24]["metadata"]["legacy_group_ids"] == [1]
    # one group that typed the user: nothing to report
    assert "legacy_group_ids" not in rows[1]["metadata"]
    assert "legacy_group_ids" not in rows[8]["metadata"]
    assert "legacy_group_ids" not in rows[21]["metadata"]


@pytest.mark.e2e
def test_profile_emails_names_and_test_accounts(phase1_db) -> None:
    rows = rows_by_key(phase1_db, PROFILES)
    assert rows[1]["email"] == "dr.smith@clinic.com"
    assert "legacy_email" not in rows[1]["metadata"]  # trim/lower-case is not recorded
    assert rows[2]["email"] is None and "legacy_email" not in rows[2]["metadata"]  # '' -> NULL
    assert rows[9]["email"] is None and rows[9]["metadata"]["legacy_email"] == "not-an-email"
    assert rows[10]["email"] is None and rows[10]["metadata"]["legacy_email"] == "john@clinic"
    assert rows[17]["email"] == "o'brien@example.com"
    assert rows[16]["email"] == "mixed@mechanodontics.com"
    test_accounts = {k for k, r in rows.items() if r["is_test_account"]}
    # 12: doctor @brius.com; 14: 'demo' username; 16: patient @mechanodontics.com.
    # 13 is a technician: brius staff use @brius.com legitimately.
    assert test_accounts == {12, 14, 16}
    assert rows[14]["first_name"] is None and rows[14]["last_name"] is None  # 'null', ''
    assert rows[16]["first_name"] is None  # ' NULL '
    assert rows[17]["last_name"] == "O'Brien"
    assert rows[11]["username"] is None  # blank username: kept for the suite to quarantine
    assert "password_hash" not in rows[1], "the credential never rests in staging"
    assert rows[1]["last_login_at"] == JOINED and rows[1]["date_joined"] == JOINED
    assert rows[7]["is_active"] is False
    assert rows[4]["is_superuser"] is True and rows[5]["is_staff"] is True


@pytest.mark.e2e
def test_profile_patient_fields(phase1_db) -> None:
    rows = rows_by_key(phase1_db, PROFILES)
    six = rows[6]
    assert six["legacy_patient_id"] == 101
    assert six["date_of_birth"] == dt.date(1990, 5, 1)
    assert (six["gender"], six["patient_status"]) == ("female", "active")
    assert six["schemes"] == {"plan": "A"} and six["patient_suffix"] == "00BB"
    assert (six["archived"], six["suspended"]) == (False, False)
    assert six["patient_submitted_at"] == SUBMITTED and six["patient_updated_at"] == UPDATED
    assert (six["legacy_doctor_user_id"], six["legacy_office_id"]) == (1, 1)
    assert six["metadata"] == {}

    nine = rows[9]  # every patient defect at once
    assert nine["legacy_patient_id"] == 102
    assert nine["date_of_birth"] is None and nine["gender"] is None
    assert nine["patient_status"] is None and nine["schemes"] is None
    assert nine["patient_suffix"] is None
    assert nine["metadata"] == {
        "legacy_email": "not-an-email",
        "legacy_birthdate": "1850-01-01",
        "legacy_sex": 7,
        "legacy_status": 99,
        "legacy_schemes": "{bad json",
        "legacy_suffix": "51Bnx",
    }

    ten = rows[10]  # two patient rows: the lowest id wins, the other is listed
    assert ten["legacy_patient_id"] == 105
    assert ten["metadata"]["other_legacy_patient_ids"] == [110]
    assert ten["date_of_birth"] == dt.date(2025, 11, 1)  # the as_of day itself is plausible
    assert (ten["gender"], ten["patient_status"]) == ("other", "archived")
    assert ten["schemes"] is None and "legacy_schemes" not in ten["metadata"]  # JSON null
    assert ten["patient_suffix"] == "51Bn"  # trimmed

    fifteen = rows[15]  # a doctor with a patient row keeps the patient fields
    assert fifteen["legacy_patient_id"] == 103 and fifteen["gender"] == "male"
    assert fifteen["patient_status"] == "on_hold" and fifteen["patient_suffix"] is None
    assert "legacy_suffix" not in fifteen["metadata"]  # '' is missing, not malformed

    sixteen = rows[16]
    assert sixteen["schemes"] == [1, 2] and sixteen["patient_status"] is None
    assert sixteen["suspended"] is None and sixteen["legacy_doctor_user_id"] is None
    assert sixteen["metadata"]["legacy_suffix"] == "AB-1"
    assert "legacy_status" not in sixteen["metadata"] and "legacy_sex" not in sixteen["metadata"]

    for user_id in (1, 7, 8):  # no patient row: every patient field is NULL
        row = rows[user_id]
        assert row["legacy_patient_id"] is None and row["date_of_birth"] is None
        assert row["archived"] is None and row["legacy_office_id"] is None


@pytest.mark.e2e
def test_future_birthdate_and_lossy_status(make_db) -> None:
    dsn = make_db("p1future")
    prepare_phase1(dsn, schema_times=1)
    with connect(dsn) as conn:  # user 10's other row becomes the primary one
        conn.execute("delete from staging.profiles__dispatch_patient where id = 105")
    run_transform(dsn, PROFILES, RUN_SETTINGS)
    ten = rows_by_key(dsn, PROFILES)[10]
    assert ten["legacy_patient_id"] == 110 and "other_legacy_patient_ids" not in ten["metadata"]
    assert ten["date_of_birth"] is None and ten["metadata"]["legacy_birthdate"] == "2030-01-01"
    assert ten["patient_status"] == "active" and ten["metadata"]["legacy_status"] == 4
    assert ten["gender"] is None and "legacy_sex" not in ten["metadata"]  # NULL stays NULL


# ---------------------------------------------------------------------------------------------
# order types
# ---------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_order_type_mapping(phase1_db) -> None:
    rows = rows_by_key(phase1_db, ORDER_TYPES)
    got = {k: (r["code"], r["name"], r["is_order_type"]) for k, r in rows.items()}
    assert got == {
        1: ("main", "Main", True),
        2: ("refinement", "Refinement", True),
        3: ("replacement", "Replacement", True),
        4: ("any", "Any", False),  # blank name: the map's name, raw kept
        7: ("invoice", "Invoice", False),
        8: ("merchandise", "Merchandise", False),
        12: ("course_12", "Night guard", False),
        13: ("course_13", None, False),  # nothing to fall back on: quarantined by the suite
    }
    assert rows[1]["customization"] == {"steps": 3} and rows[1]["metadata"] == {}
    assert rows[3]["customization"] is None
    assert rows[3]["metadata"] == {"legacy_customization": "{oops"}
    assert rows[4]["metadata"] == {"legacy_name": ""}
    assert rows[12]["customization"] is None and rows[12]["legacy_course_type"] == 5


# ---------------------------------------------------------------------------------------------
# loading into the target, and the care-team links
# ---------------------------------------------------------------------------------------------
QUARANTINED = {"offices": {4, 5, 6, 11, 12}, "profiles": {11}, "order_types": {13}}


def load_all(dsn: str) -> None:
    for entity in PHASE_1.ordered():
        simulate_load(dsn, entity, QUARANTINED[entity.name])


@pytest.mark.e2e
def test_target_accepts_the_transformed_rows_and_links_the_care_team(phase1_db) -> None:
    load_all(phase1_db)
    link = read_sql("load/profiles__link_care_team.sql")
    with connect(phase1_db) as conn:
        first = conn.execute(link).rowcount
        assert first == 8  # users 6, 9, 10, 15, 16, 18, 19, 20 have a resolvable doctor or office
        links = dict(
            (r[0], (r[1], r[2]))
            for r in conn.execute(
                """
                select p.legacy_user_id, d.legacy_user_id, o.legacy_office_id
                from public.profiles p
                left join public.profiles d on d.id = p.patient_doctor_id
                left join public.offices o on o.id = p.patient_office_id
                where p.legacy_patient_id is not null
                """
            )
        )
    assert links == {
        6: (1, 1),
        9: (1, 2),
        10: (1, 1),
        15: (1, None),  # office_id NULL
        16: (None, 1),  # doctor_id NULL: office still linked (office 1 exists)
        18: (1, 1),
        19: (1, 1),
        20: (1, 1),
        27: (None, None),  # patient rows without a doctor or an office: nothing to link
        29: (None, None),
    }
    with connect(phase1_db) as conn:
        stamps = conn.execute("select legacy_user_id, updated_at from public.profiles").fetchall()
        assert conn.execute(link).rowcount == 0  # rerun: nothing to change
        assert (
            conn.execute("select legacy_user_id, updated_at from public.profiles").fetchall()
            == stamps
        )


@pytest.mark.e2e
def test_link_follows_legacy_changes_and_late_parents(phase1_db) -> None:
    load_all(phase1_db)
    link = read_sql("load/profiles__link_care_team.sql")
    with connect(phase1_db) as conn:
        conn.execute(link)
        # the patient row of user 10 now points at doctor 11 (quarantined, not in the target)
        conn.execute(
            "update public.profiles set legacy_doctor_user_id = 11 where legacy_user_id = 10"
        )
        conn.execute(link)
        assert (
            conn.execute(
                "select patient_doctor_id from public.profiles where legacy_user_id = 10"
            ).fetchone()[0]
            is None
        )
        # doctor 11 is fixed in legacy and arrives in a later run: the link appears
        conn.execute(
            "insert into public.profiles (legacy_user_id, username, profile_type) "
            "values (11, 'fixed', 'doctor')"
        )
        assert conn.execute(link).rowcount == 1
        # a profile created in the app (no legacy id) is never touched
        conn.execute(
            "insert into public.profiles (username, legacy_doctor_user_id) values ('app', 1)"
        )
        conn.execute(link)
        assert (
            conn.execute(
                "select patient_doctor_id from public.profiles where username = 'app'"
            ).fetchone()[0]
            is None
        )


@pytest.mark.e2e
def test_course_one_merges_into_the_seeded_main_type(phase1_db) -> None:
    load_all(phase1_db)
    load_all(phase1_db)  # a rerun converges
    with connect(phase1_db) as conn:
        rows = conn.execute(
            "select code, legacy_course_id, is_order_type from public.order_types order by code"
        ).fetchall()
    by_code = {r[0]: r for r in rows}
    assert len(rows) == 5 + 4  # seeded five + any, invoice, merchandise, course_12 (13 held)
    assert by_code["main"][1] == 1 and by_code["refinement"][1] == 2
    assert by_code["retainer"][1] is None and by_code["retainer"][2] is True
    assert by_code["invoice"][2] is False and "course_13" not in by_code


@pytest.mark.e2e
def test_target_constraints_back_up_the_quarantine_rules(phase1_db) -> None:
    """The rows the suites quarantine would also be refused by the target itself."""
    for entity, key in ((OFFICES, 4), (PROFILES, 11), (ORDER_TYPES, 13)):
        skip = {k for k in QUARANTINED[entity.name] if k != key}
        with pytest.raises((psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation)):
            simulate_load(phase1_db, entity, skip)


# ---------------------------------------------------------------------------------------------
# row level security
# ---------------------------------------------------------------------------------------------
def _as_user(conn: psycopg.Connection[Any], auth_uid: str | None) -> None:
    conn.execute("set local role authenticated")
    claims = {"role": "authenticated", **({"sub": auth_uid} if auth_uid else {})}
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


@pytest.mark.e2e
def test_row_level_security(phase1_db) -> None:
    load_all(phase1_db)
    accounts = {1: uuid.uuid4(), 6: uuid.uuid4(), 3: uuid.uuid4(), 7: uuid.uuid4()}
    with connect(phase1_db) as conn:
        conn.execute(read_sql("load/profiles__link_care_team.sql"))
        for user_id, auth_id in accounts.items():
            conn.execute(
                "update public.profiles set auth_user_id = %s where legacy_user_id = %s",
                (auth_id, user_id),
            )
        total = conn.execute("select count(*) from public.profiles").fetchone()[0]

    def visible(user_id: int, query: str) -> set[Any]:
        with connect(phase1_db) as conn:
            _as_user(conn, str(accounts[user_id]))
            return {r[0] for r in conn.execute(query)}

    profiles = "select legacy_user_id from public.profiles"
    offices = "select legacy_office_id from public.offices"
    assert visible(6, profiles) == {6}  # a patient: only themself
    assert visible(6, offices) == {1}  # and their office
    assert visible(1, profiles) == {1, 6, 9, 10, 15, 18, 19, 20}  # a doctor and their patients
    assert visible(1, offices) == {1, 2}  # offices they own (legacy doctor_id = 1)
    assert len(visible(3, profiles)) == total  # a master (staff) reads everyone
    assert visible(7, profiles) == {7}  # unclassified: only themself
    assert len(visible(7, "select code from public.order_types")) == 9

    with connect(phase1_db) as conn:
        _as_user(conn, None)  # signed in as nobody we know
        assert conn.execute("select count(*) from public.profiles").fetchone()[0] == 0
    with connect(phase1_db) as conn:
        _as_user(conn, str(accounts[3]))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select password_hash from public.profiles")
    with connect(phase1_db) as conn:
        _as_user(conn, str(accounts[3]))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update public.profiles set first_name = 'x'")
    with connect(phase1_db) as conn:
        conn.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select 1 from public.order_types")
    with connect(phase1_db) as conn:
        conn.execute("set local role service_role")
        assert conn.execute("select count(*) from public.profiles").fetchone()[0] == total
        conn.execute("update public.order_types set name = name where code = 'main'")


# ---------------------------------------------------------------------------------------------
# the sql files are plain text the engine runs without parameters
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "target/000_supabase_compat.sql",
        "target/100_phase1_core.sql",
        "transform/offices.sql",
        "transform/profiles.sql",
        "transform/order_types.sql",
        "load/profiles__link_care_team.sql",
    ],
)
def test_sql_files_have_no_placeholders_or_now(path: str) -> None:
    text = read_sql(path)
    assert not re.search(r"%\(\w+\)s", text), "named placeholders: the engine passes no parameters"
    if path.startswith("transform/"):
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        assert "now()" not in body and "current_timestamp" not in body
        assert body.lstrip().startswith("drop table if exists staging.")


@pytest.mark.e2e
def test_engine_creates_every_reference_table(make_db) -> None:
    """The engine's temp-table loader accepts every declared map (types match the values)."""
    dsn = make_db("p1refs")
    with connect(dsn) as conn:
        names = tuple(sorted({n for e in PHASE_1.entities for n in e.reference_tables}))
        create_reference_tables(conn, names)
        for name in names:
            assert conn.execute(f"select count(*) from {name}").fetchone()[0] > 0
