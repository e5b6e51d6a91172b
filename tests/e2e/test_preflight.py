"""Preflight (issue 18): what is wrong is named before phase 1 writes anything.

A copy of the sandbox legacy database with a dropped column, a changed type and a missing
table, and a target whose sessions are read-only: each is named in the preflight page and
the error, and phase 1's gate (the same function its first task calls) refuses to start.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from migration_ops import local_env
from migration_ops.audit import preflight
from migration_ops.audit.preflight import PreflightFailed
from migration_ops.db import connect

pytestmark = pytest.mark.e2e


@pytest.fixture
def drifted_legacy(sandbox_dsn, pg_socket):
    """A legacy copy: auth_user.last_login dropped, dispatch_office.tax_rate now text,
    dispatch_category gone."""
    admin = local_env.dsn(pg_socket, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop database if exists e2e_pf_legacy with (force)")
        conn.execute("create database e2e_pf_legacy template e2e_legacy")
    dsn = local_env.dsn(pg_socket, "e2e_pf_legacy")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("alter table auth_user drop column last_login")
        conn.execute("alter table dispatch_office alter column tax_rate type text")
        conn.execute("drop table dispatch_category cascade")
    yield dsn
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop database if exists e2e_pf_legacy with (force)")


def _fingerprint(dsn: str) -> list[tuple[str, int]]:
    with connect(dsn) as conn:
        return [
            (str(r[0]), int(r[1]))
            for r in conn.execute(
                "select relname, xmin::text::bigint from pg_class "
                "where relnamespace not in ('pg_catalog'::regnamespace, "
                "'information_schema'::regnamespace, 'pg_toast'::regnamespace) order by relname"
            ).fetchall()
        ]


def test_a_sound_pair_passes_and_changes_nothing(sandbox_dsn, supabase_db, tmp_path) -> None:
    target = supabase_db("pf_ok")
    before = (_fingerprint(sandbox_dsn), _fingerprint(target))
    out = preflight.require_preflight(sandbox_dsn, target, tmp_path)
    assert (_fingerprint(sandbox_dsn), _fingerprint(target)) == before
    data = json.loads((out / "preflight.json").read_text())
    assert data["ok"] is True
    statuses = {(c["area"], c["name"]): c["status"] for c in data["checks"]}
    assert statuses[("legacy schema", "drift")] == "ok"
    assert statuses[("target", "writable")] == "ok"
    assert statuses[("target", "privileges")] == "ok"
    assert statuses[("target", "extension vector")] == "ok"
    defects = {(d["defect"], d["table"]): d["rows"] for d in data["defects"]}
    assert defects == {
        ("orphan", "dispatch_patient"): 0,
        ("orphan", "dispatch_instruction"): 0,
        ("orphan", "dispatch_state"): 1,
        ("orphan", "dispatch_comment"): 0,
        ("bad_email", "auth_user"): 1,
        ("unknown_code", "dispatch_state"): 1,
        ("mis_encoded_text", "dispatch_record"): 2,
        ("mis_encoded_text", "dispatch_comment"): 1,
    }
    assert statuses[("legacy", "select privileges")] == "ok"
    # the embedded target is this machine's: its free space is measured, not assumed
    assert statuses[("space", "staging")] == "ok"
    volumes = {(v["entity"], v["table"]): (v["rows"], v["last_run"]) for v in data["volumes"]}
    assert volumes[("profiles", "auth_user")] == (102, None), "a fresh target has no last run"
    with connect(sandbox_dsn) as conn:
        patients = conn.execute("select count(*) from dispatch_patient").fetchone()
    assert volumes[("profiles", "dispatch_patient")] == (patients[0], None), "every source"
    assert {t for _, t in volumes} == set(preflight.spec_columns())
    assert "preflight" in (out / "preflight.html").read_text()


@pytest.fixture
def reader_without_comments(pg_socket):
    """A legacy copy and a login there that may SELECT every table except dispatch_comment."""
    from tests.e2e.conftest import copy_of_sandbox

    admin = local_env.dsn(pg_socket, "postgres")
    legacy = copy_of_sandbox(pg_socket, "e2e_pf_grant")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop role if exists pf_reader")
        conn.execute("create role pf_reader login")
    with psycopg.connect(legacy, autocommit=True) as conn:
        conn.execute("grant usage on schema public to pf_reader")
        conn.execute("grant select on all tables in schema public to pf_reader")
        conn.execute("revoke select on dispatch_comment from pf_reader")
    yield local_env.dsn(pg_socket, "e2e_pf_grant", user="pf_reader")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop database e2e_pf_grant with (force)")
        conn.execute("drop role pf_reader")


def test_a_missing_select_grant_is_a_named_failing_check(
    reader_without_comments, supabase_db, tmp_path
) -> None:
    target = supabase_db("pf_grant")
    with pytest.raises(PreflightFailed) as raised:
        preflight.require_preflight(reader_without_comments, target, tmp_path)
    assert "preflight failed (1 checks)" in str(raised.value)
    assert "legacy select privileges: no SELECT for the legacy role on: dispatch_comment" in str(
        raised.value
    )
    (report,) = tmp_path.glob("preflight-*/preflight.json")
    data = json.loads(report.read_text())
    checks = {(c["area"], c["name"]): (c["status"], c["detail"]) for c in data["checks"]}
    assert checks[("legacy", "select privileges")] == (
        "fail",
        "no SELECT for the legacy role on: dispatch_comment",
    )
    volumes = {(v["entity"], v["table"]): v["rows"] for v in data["volumes"]}
    assert volumes[("plan_comments", "dispatch_comment")] is None, "not counted: not readable"
    defects = {(d["defect"], d["table"]): d["rows"] for d in data["defects"]}
    assert defects[("orphan", "dispatch_comment")] is None
    assert "dispatch_comment" in (report.parent / "preflight.html").read_text()


def test_drift_and_a_read_only_target_are_named_and_phase_1_refuses(
    drifted_legacy, supabase_db, pg_socket, tmp_path
) -> None:
    target = supabase_db("pf_ro")
    name = target.split("/")[-1].split("?")[0]
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        conn.execute(f'alter database "{name}" set default_transaction_read_only = on')
    with pytest.raises(PreflightFailed) as raised:
        preflight.require_preflight(drifted_legacy, target, tmp_path)
    message = str(raised.value)
    assert "rule preflight.passed" in message
    assert "preflight failed (4 checks)" in message
    for named in (
        "legacy schema auth_user.last_login: column missing",
        "legacy schema dispatch_office.tax_rate: type changed: numeric(8,4) → text",
        "legacy schema dispatch_category: table missing",
        "target writable: target sessions are read-only",
    ):
        assert named in message
    (report,) = tmp_path.glob("preflight-*/preflight.html")
    page = report.read_text()
    for named in (
        "auth_user.last_login",
        "dispatch_office.tax_rate",
        "dispatch_category",
        "target sessions are read-only",
    ):
        assert named in page
    with connect(target) as conn:
        assert conn.execute("select to_regclass('migration.runs')").fetchone() == (None,), (
            "phase 1 did not start: nothing was created"
        )


@pytest.fixture
def weaker_role(pg_socket):
    """Supabase's ``postgres`` (its memberships, BYPASSRLS) but without CREATEDB."""
    admin = local_env.dsn(pg_socket, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop role if exists migration_pf_weak")
        conn.execute(
            f"create role migration_pf_weak login nocreatedb bypassrls "
            f"in role {local_env.SUPABASE_ROLE}"
        )
    yield "migration_pf_weak"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop owned by migration_pf_weak cascade")
        conn.execute("drop role if exists migration_pf_weak")


def test_a_target_role_without_a_privilege_is_named_by_the_preflight(
    sandbox_dsn, supabase_db, pg_socket, weaker_role, tmp_path
) -> None:
    name = supabase_db("pf_weak").split("/")[-1].split("?")[0]
    weak = local_env.dsn(pg_socket, name, weaker_role)
    result = preflight.run_preflight(sandbox_dsn, weak)
    (privileges,) = [c for c in result.checks if (c.area, c.name) == ("target", "privileges")]
    assert (privileges.status, privileges.detail) == (
        "fail",
        "missing: CREATEDB (backup verification restores every backup into a scratch "
        "database it creates and drops)",
    )
    assert [(c.area, c.name) for c in result.failures] == [("target", "privileges")]
    with pytest.raises(PreflightFailed) as raised:
        preflight.require_preflight(sandbox_dsn, weak, tmp_path)
    assert str(raised.value).startswith(
        "[preflight] rule preflight.passed: preflight failed (1 checks): target privileges: "
        "missing: CREATEDB (backup verification restores"
    )
    (page,) = tmp_path.glob("preflight-*/preflight.html")
    assert "missing: CREATEDB (backup verification restores every backup" in page.read_text()
