"""The sandbox legacy database on a real PostgreSQL: determinism, shape, defects, constraints."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from include.sandbox import (
    build_sandbox,
    media_complete,
    media_relative_path,
    sandbox_exists,
    scaled_volumes,
)
from include.sandbox.__main__ import main
from include.sandbox.defects import DEFECTS
from include.sandbox.generator import LEGACY_TABLES, SQL_DIR
from migration_ops import local_env

pytestmark = pytest.mark.e2e

SCALE = 0.01
SEED = 7
CANONICAL_COUNTRIES = (
    "'USA', 'India', 'Japan', 'Thailand', 'Vietnam', 'Australia', 'Philippines', 'Singapore',"
    " 'France', 'New Zealand'"
)
EMAIL = r"'^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$'"
NATIVE_SCRIPT = r"'[\u3040-\u30ff\u4e00-\u9fff\u0e00-\u0e7f]'"


def _norm(column: str) -> str:
    spaced = f"regexp_replace({column}, '\\s+', ' ', 'g')"
    return f"translate(lower(btrim({spaced})), 'áéíóúñüëôç', 'aeiounueoc')"


#: (defect, table, condition every logged row ``t`` of that table must satisfy).
CHECKS: list[tuple[str, str, str]] = [
    ("email_empty", "auth_user", "t.email = ''"),
    ("email_invalid", "auth_user", f"t.email <> '' and t.email !~ {EMAIL}"),
    (
        "user_no_group",
        "auth_user",
        "not exists (select 1 from auth_user_groups g where g.user_id = t.id)",
    ),
    (
        "user_multi_group",
        "auth_user",
        "(select count(*) from auth_user_groups g where g.user_id = t.id) >= 2",
    ),
    (
        "test_account",
        "auth_user",
        "t.email ilike '%@brius.com' or t.email ilike '%@mechanodontics.com'"
        " or t.username ilike 'demo%'",
    ),
    (
        "duplicate_doctor",
        "auth_user",
        "exists (select 1 from auth_user o join dispatch_doctorsetting s on s.user_id = o.id"
        " where o.id < t.id and (lower(btrim(o.email)) = lower(btrim(t.email)) and t.email <> ''"
        " or (o.first_name, o.last_name) = (t.first_name, t.last_name)))"
        " and exists (select 1 from dispatch_doctorsetting s where s.user_id = t.id)",
    ),
    ("name_blank", "auth_user", "t.first_name in ('', 'null') or t.last_name in ('', 'null')"),
    (
        "duplicate_patient",
        "dispatch_patient",
        "exists (select 1 from dispatch_patient q join auth_user uq on uq.id = q.user_id"
        " join auth_user u on u.id = t.user_id where q.id <> t.id"
        " and q.doctor_id is not distinct from t.doctor_id"
        f" and {_norm('uq.first_name')} = {_norm('u.first_name')}"
        f" and {_norm('uq.last_name')} = {_norm('u.last_name')})",
    ),
    ("suffix_missing", "dispatch_patient", "coalesce(t.suffix, '') = ''"),
    ("suffix_malformed", "dispatch_patient", "t.suffix <> '' and length(t.suffix) <> 4"),
    ("schemes_invalid_json", "dispatch_patient", "not pg_input_is_valid(t.schemes, 'jsonb')"),
    ("sex_invalid", "dispatch_patient", "t.sex not in (0, 1, 2)"),
    ("patient_status_unknown", "dispatch_patient", "t.status not in (1, 2, 4, 10)"),
    (
        "birthdate_implausible",
        "dispatch_patient",
        "t.birthdate < '1900-01-01' or t.birthdate > '2025-11-01'",
    ),
    ("patient_no_doctor", "dispatch_patient", "t.doctor_id is null"),
    ("patient_no_office", "dispatch_patient", "t.office_id is null"),
    ("tax_rate_percent", "dispatch_office", "t.tax_rate > 1 and t.tax_rate <= 100"),
    ("tax_rate_invalid", "dispatch_office", "t.tax_rate > 100 or t.tax_rate < 0"),
    ("country_variant", "dispatch_office", f"t.country not in ({CANONICAL_COUNTRIES})"),
    ("country_null", "dispatch_office", "t.country is null"),
    ("country_unknown", "dispatch_office", f"t.country not in ({CANONICAL_COUNTRIES})"),
    ("order_soft_deleted", "dispatch_instruction", "t.deleted"),
    ("order_status_unknown", "dispatch_instruction", "t.status not in (0, 1, 2, 4)"),
    ("exports_invalid_json", "dispatch_instruction", "not pg_input_is_valid(t.exports, 'jsonb')"),
    ("text_multilingual", "dispatch_instruction", f"t.notes ~ {NATIVE_SCRIPT}"),
    ("text_multilingual", "dispatch_record", f"t.text ~ {NATIVE_SCRIPT}"),
    ("text_multilingual", "dispatch_comment", f"t.text ~ {NATIVE_SCRIPT}"),
    ("text_mojibake", "dispatch_instruction", "t.notes ~ 'Ã'"),
    ("text_mojibake", "dispatch_record", "t.text ~ 'Ã'"),
    ("text_mojibake", "dispatch_comment", "t.text ~ 'Ã'"),
    ("record_type_unknown", "dispatch_record", "t.type is null or t.type not in (3, 5, 6, 8)"),
    (
        "record_target_unknown_model",
        "dispatch_record",
        "(select (app_label, model) in"
        " (('sessions', 'session'), ('dispatch', 'case'), ('dispatch', 'message'))"
        " from django_content_type ct where ct.id = t.target_type_id)",
    ),
    (
        "record_target_namesake_model",
        "dispatch_record",
        "(select (ct.app_label, ct.model) = ('users', 'user')"
        " and exists (select 1 from auth_user u where u.id = t.target_id)"
        " or (ct.app_label, ct.model) = ('projects', 'project')"
        " and exists (select 1 from dispatch_project p where p.id = t.target_id)"
        " from django_content_type ct where ct.id = t.target_type_id)",
    ),
    ("record_target_null_type", "dispatch_record", "t.target_type_id is null"),
    (
        "record_target_dangling",
        "dispatch_record",
        "(select (ct.app_label, ct.model) = ('dispatch', 'patient')"
        " and not exists (select 1 from dispatch_patient p where p.id = t.target_id)"
        " or (ct.app_label, ct.model) = ('dispatch', 'instruction')"
        " and not exists (select 1 from dispatch_instruction i where i.id = t.target_id)"
        " from django_content_type ct where ct.id = t.target_type_id)",
    ),
    ("state_no_instruction", "dispatch_state", "t.instruction_id is null"),
    ("state_status_unknown", "dispatch_state", "t.status not in (11, 12)"),
    (
        "template_cycle",
        "dispatch_template_predecessors",
        "exists (with recursive earlier(id) as (select t.to_template_id"
        " union select p.to_template_id from dispatch_template_predecessors p join earlier e"
        " on p.from_template_id = e.id) select 1 from earlier where id = t.from_template_id)",
    ),
    ("file_double_extension", "dispatch_file", "t.ext = 'stl' and t.name like '%.stl'"),
    (
        "file_missing_media",
        "dispatch_file",
        "exists (select 1 from sandbox.media_manifest m where m.file_id = t.id and m.missing)",
    ),
    (
        "jaw_unreferenced",
        "dispatch_jaw",
        "not exists (select 1 from dispatch_instruction i"
        " where t.id in (i.upper_jaw_id, i.lower_jaw_id))",
    ),
    (
        "project_shared",
        "dispatch_project",
        "(select count(*) from dispatch_plan p where p.project_id = t.id) >= 2",
    ),
]


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def sandbox(pg_socket: str, media_root: Path):
    """One sandbox at scale 0.01 shared by the read-only tests of this module."""
    name = f"t_sandbox_{uuid.uuid4().hex[:8]}"
    dsn = local_env.ensure_database(pg_socket, name, recreate=True)
    counts = build_sandbox(dsn, scale=SCALE, seed=SEED, media_dir=media_root)
    yield dsn, counts
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _scalar(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _digests(dsn: str) -> dict[str, str]:
    tables = [
        *LEGACY_TABLES,
        "sandbox.injected_defects",
        "sandbox.media_manifest",
        "sandbox.build_info",
    ]
    query = "select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {} t"
    return {table: _scalar(dsn, query.format(table)) for table in tables}


def _patient_content_type(dsn: str) -> int:
    query = "select id from django_content_type where app_label = 'dispatch' and model = 'patient'"
    return int(_scalar(dsn, query))


def test_same_seed_is_byte_identical_and_another_seed_differs(sandbox, make_db, tmp_path):
    dsn, _ = sandbox
    again = make_db("sandbox_again")
    build_sandbox(again, scale=SCALE, seed=SEED, media_dir=tmp_path / "media")
    assert _digests(again) == _digests(dsn)

    other = make_db("sandbox_other")
    build_sandbox(other, scale=SCALE, seed=SEED + 1)
    assert _patient_content_type(other) != _patient_content_type(dsn)
    assert _digests(other)["dispatch_task"] != _digests(dsn)["dispatch_task"]


def test_counts_follow_the_scaled_volumes(sandbox):
    dsn, counts = sandbox
    volumes = scaled_volumes(SCALE)
    assert set(counts) == set(LEGACY_TABLES)
    for table in (
        "auth_user", "dispatch_patient", "dispatch_office", "dispatch_office_doctors",
        "dispatch_doctorsetting", "dispatch_instruction", "dispatch_plan", "dispatch_project",
        "dispatch_comment", "dispatch_record", "dispatch_record_attachments", "dispatch_state",
        "dispatch_file",
    ):  # fmt: skip
        assert counts[table] == volumes[table], table
        assert _scalar(dsn, f"select count(*) from {table}") == counts[table]
    assert counts["dispatch_jaw"] == pytest.approx(volumes["dispatch_jaw"], rel=0.02)
    assert counts["dispatch_task"] == pytest.approx(volumes["dispatch_task"], rel=0.02)
    assert counts["auth_group"] == 10
    assert counts["dispatch_template"] == 169
    assert counts["dispatch_template_predecessors"] == 191
    assert counts["dispatch_category"] == 44
    assert (
        _scalar(dsn, "select count(*) from dispatch_office where valid")
        == volumes["dispatch_office.valid"]
    )
    assert _scalar(dsn, "select array_agg(id order by id) from dispatch_course") == [
        1,
        2,
        3,
        4,
        7,
        8,
        12,
    ]


@pytest.mark.parametrize(
    ("query", "expected", "tolerance"),
    [
        ("select avg((email = '' or email !~ {email})::int) from auth_user", 0.86, 0.04),
        (
            "select avg((u.id in (select user_id from dispatch_doctorsetting))::int)"
            " from auth_user u",
            0.12,
            0.02,
        ),
        ("select avg((status = 4)::int) from dispatch_instruction", 0.81, 0.03),
        ("select avg((status = 1)::int) from dispatch_instruction", 0.14, 0.03),
        ("select avg(deleted::int) from dispatch_instruction", 0.014, 0.01),
        ("select avg((coalesce(suffix, '') <> '')::int) from dispatch_patient", 0.846, 0.03),
        ("select avg((office_id is not null)::int) from dispatch_patient", 0.953, 0.03),
        ("select avg((type = 5)::int) from dispatch_record", 0.52, 0.02),
        ("select avg((type = 6)::int) from dispatch_record", 0.42, 0.02),
        (
            "select avg(((ct.app_label, ct.model) = ('dispatch', 'patient'))::int)"
            " from dispatch_record r left join django_content_type ct on ct.id = r.target_type_id",
            0.80,
            0.02,
        ),
        (
            "select avg(((ct.app_label, ct.model) = ('auth', 'user'))::int)"
            " from dispatch_record r left join django_content_type ct on ct.id = r.target_type_id",
            0.12,
            0.02,
        ),
        (
            "select count(*)::float / (select count(*) from dispatch_instruction)"
            " from dispatch_task",
            40,
            2,
        ),
        (
            "select count(*)::float / (select count(*) from dispatch_instruction)"
            " from dispatch_jaw",
            1.74,
            0.05,
        ),
        ("select avg((status = 11)::int) from dispatch_state", 0.547, 0.05),
        ("select avg((instruction_id is null)::int) from dispatch_file", 0.5, 0.05),
    ],
)
def test_proportions(sandbox, query, expected, tolerance):
    dsn, _ = sandbox
    assert float(_scalar(dsn, query.format(email=EMAIL))) == pytest.approx(expected, abs=tolerance)


def test_realistic_shape(sandbox):
    dsn, _ = sandbox
    # Sparse ids: more ids than rows; patient numbers far beyond the patient count.
    assert _scalar(dsn, "select max(id) > count(*) from auth_user")
    assert _scalar(dsn, "select max(id) > 10 * count(*) from dispatch_patient")
    # Timestamps stay in the fixed window.
    for table, column in [
        ("auth_user", "date_joined"),
        ("dispatch_record", "created_at"),
        ("dispatch_task", "done_at"),
    ]:
        low, high = _scalar(dsn, f"select array[min({column}), max({column})]::text[] from {table}")
        assert "2018-03-01" <= low[:10] and high[:10] < "2025-11-01"
    # Order ids follow submission time; plans link instructions to projects.
    assert _scalar(
        dsn,
        "select bool_and(submitted_at >= prev) from (select submitted_at,"
        " lag(submitted_at) over (order by id) prev from dispatch_instruction) s"
        " where prev is not null",
    )
    assert _scalar(
        dsn,
        "select count(*) from dispatch_record_attachments a"
        " join dispatch_file f on f.id = a.file_id where f.record_id = a.record_id",
    ) == _scalar(dsn, "select count(*) from dispatch_record_attachments")
    # The documented group ids carry the roles (§1b): 2 doctors, 1 patients, 11 technicians.
    doctors_in_2 = _scalar(
        dsn,
        "select avg((group_id = 2)::int) from auth_user_groups g"
        " join dispatch_doctorsetting s using (user_id)",
    )
    patients_in_1 = _scalar(
        dsn,
        "select avg((group_id = 1)::int) from auth_user_groups g"
        " join dispatch_patient p using (user_id)",
    )
    assert float(doctors_in_2) > 0.9 and float(patients_in_1) > 0.9
    assert _scalar(dsn, "select count(*) from auth_user_groups where group_id = 11") >= 1


def test_every_defect_class_is_injected_and_real(sandbox):
    dsn, _ = sandbox
    with psycopg.connect(dsn) as conn:
        logged = dict(
            conn.execute(
                "select defect, count(*) from sandbox.injected_defects group by 1"
            ).fetchall()
        )
        assert {d for d, n in logged.items() if n >= 1} == set(DEFECTS)
        pairs = set(
            conn.execute(
                "select distinct defect, table_name from sandbox.injected_defects"
            ).fetchall()
        )
        assert pairs <= {(d, t) for d, t, _ in CHECKS}
        for defect, table, condition in CHECKS:
            total, joined, holding = conn.execute(
                f"select count(*), count(t.id), count(*) filter (where {condition})"
                f" from sandbox.injected_defects d left join {table} t on t.id = d.legacy_id"
                f" where d.defect = '{defect}' and d.table_name = '{table}'"
            ).fetchone()
            assert joined == total, f"{defect}: logged rows missing from {table}"
            assert holding == total, (
                f"{defect} on {table}: {total - holding} of {total} logged rows do not show it"
            )


def test_documented_production_counts_of_rare_defects(sandbox):
    dsn, _ = sandbox
    assert _scalar(dsn, "select count(*) from dispatch_office where country is null") >= 1
    assert _scalar(dsn, "select count(*) from dispatch_record where type is null") >= 1
    assert (
        _scalar(dsn, "select count(*) from dispatch_patient where length(suffix) not in (0, 4)")
        >= 1
    )


def test_constraints_are_django_like_and_valid(sandbox):
    dsn, _ = sandbox
    expected_fks = (SQL_DIR / "constraints.sql").read_text(encoding="utf-8").count("FOREIGN KEY")
    with psycopg.connect(dsn) as conn:
        fks = conn.execute(
            "select count(*), bool_and(convalidated), bool_and(condeferrable and condeferred)"
            " from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace"
        ).fetchone()
        assert fks == (expected_fks, True, True)
        without_pk = conn.execute(
            "select array_agg(t) from unnest(%s::text[]) t where not exists"
            " (select 1 from pg_constraint c where c.conrelid = t::regclass and c.contype = 'p')",
            (list(LEGACY_TABLES),),
        ).fetchone()[0]
        assert without_pk is None
        for table in ("auth_user", "dispatch_task", "dispatch_patient"):
            next_id, max_id = conn.execute(
                f"select nextval(pg_get_serial_sequence('{table}', 'id')),"
                f" (select max(id) from {table})"
            ).fetchone()
            assert next_id > max_id


def test_generic_relations_resolve_by_natural_key(sandbox):
    dsn, _ = sandbox
    unresolved = _scalar(
        dsn,
        "select count(*) from dispatch_record r"
        " left join django_content_type ct on ct.id = r.target_type_id"
        " where r.id not in (select legacy_id from sandbox.injected_defects"
        "   where table_name = 'dispatch_record' and defect like 'record_target_%')"
        " and not coalesce("
        "  (ct.app_label, ct.model) = ('dispatch', 'patient')"
        "   and exists (select 1 from dispatch_patient x where x.id = r.target_id)"
        "  or (ct.app_label, ct.model) = ('auth', 'user')"
        "   and exists (select 1 from auth_user x where x.id = r.target_id)"
        "  or (ct.app_label, ct.model) = ('dispatch', 'instruction')"
        "   and exists (select 1 from dispatch_instruction x where x.id = r.target_id)"
        "  or (ct.app_label, ct.model) = ('dispatch', 'project')"
        "   and exists (select 1 from dispatch_project x where x.id = r.target_id), false)",
    )
    assert unresolved == 0
    permissions = _scalar(
        dsn,
        "select count(*) from auth_permission p"
        " join django_content_type ct on ct.id = p.content_type_id"
        " where p.codename = 'view_' || ct.model",
    )
    assert permissions == _scalar(dsn, "select count(*) from django_content_type")


def test_media_store_matches_the_manifest(sandbox, media_root):
    dsn, _ = sandbox
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select m.relative_path, m.size, m.sha256, m.missing,"
            " f.uid::text, f.name, f.ext, f.size"
            " from sandbox.media_manifest m join dispatch_file f on f.id = m.file_id"
        ).fetchall()
        files = conn.execute("select count(*) from dispatch_file").fetchone()[0]
    assert len(rows) == pytest.approx(0.02 * files, abs=2)
    assert any(row[3] for row in rows) and not all(row[3] for row in rows)
    for relative, size, sha256, missing, uid, name, ext, file_size in rows:
        assert relative == media_relative_path(uid, name, ext)
        assert size == file_size
        path = media_root / relative
        if missing:
            assert not path.exists()
        else:
            content = path.read_bytes()
            assert len(content) == size and hashlib.sha256(content).hexdigest() == sha256
    assert media_complete(dsn, media_root)


def test_sandbox_exists_only_for_the_same_parameters(sandbox, make_db):
    dsn, _ = sandbox
    assert sandbox_exists(dsn, SCALE, SEED)
    assert not sandbox_exists(dsn, 0.02, SEED)
    assert not sandbox_exists(dsn, SCALE, SEED + 1)
    assert not sandbox_exists(make_db("sandbox_empty"), SCALE, SEED)


def test_cli_reuses_or_builds(sandbox, make_db, capsys):
    dsn, _ = sandbox
    assert main(["--dsn", dsn, "--scale", str(SCALE), "--seed", str(SEED), "--if-missing"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    fresh = make_db("sandbox_cli")
    assert main(["--dsn", fresh, "--scale", "0.002", "--seed", "3", "--if-missing"]) == 0
    out = capsys.readouterr().out
    assert "dispatch_task" in out and "built in" in out
    assert sandbox_exists(fresh, 0.002, 3)
