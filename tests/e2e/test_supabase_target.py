"""The project as Supabase's non-superuser ``postgres`` role, on a Supabase-shaped target.

The target (``local_env.ensure_supabase_database``) has what a Supabase project has before our
schema: ``auth`` owned by ``supabase_admin`` with helpers owned by ``supabase_auth_admin``,
extensions created by ``supabase_admin`` (``vector`` among them, which a non-superuser may not
create), Supabase's default privileges in ``public``, for ``supabase_admin`` and for the
connecting role. A phase, its verified backup and both rollback modes run as that role; RLS,
table grants and policies come back exactly; Supabase's own objects are never changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from include.entities import get_phase
from migration_ops import backup, local_env, rollback, runs
from migration_ops.db import connect, scalar
from migration_ops.privileges import missing_target_privileges, target_privileges
from tests.e2e.conftest import run_phase
from tests.e2e.fingerprint import auth_functions, tables_without_rls

pytestmark = pytest.mark.e2e

PHASE_1 = get_phase(1)
SUPABASE_ADMIN_DEFAULTS = [
    "supabase_admin functions",
    "supabase_admin sequences",
    "supabase_admin tables",
]


@pytest.fixture(scope="module")
def target(pg_socket, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MIGRATION_BACKUP_DIR", str(tmp_path_factory.mktemp("backups")))
    yield local_env.ensure_supabase_database(pg_socket, "e2e_supabase_target", recreate=True)
    mp.undo()


# ------------------------------------------------------------------ what the target is like
def table_security(dsn: str) -> dict[str, object]:
    """Per public table: RLS flags, sorted table and column grants, and its policies."""
    with connect(dsn) as conn:
        tables = conn.execute(
            """
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   array(select unnest(c.relacl)::text order by 1),
                   array(select a.attname || ' ' || acl::text
                         from pg_attribute as a cross join unnest(a.attacl) as acl
                         where a.attrelid = c.oid order by 1)
            from pg_class as c
            where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
            order by 1
            """
        ).fetchall()
        policies = conn.execute(
            "select tablename, policyname, permissive, roles::text, cmd, qual, with_check "
            "from pg_policies where schemaname = 'public' order by 1, 2"
        ).fetchall()
    return {"tables": tables, "policies": policies}


def default_privileges(dsn: str) -> list[tuple[str, str, str]]:
    with connect(dsn) as conn:
        return conn.execute(
            "select pg_get_userbyid(defaclrole), defaclobjtype::text, defaclacl::text "
            "from pg_default_acl order by 1, 2, 3"
        ).fetchall()


def manifest_skipped(dsn: str, backup_id: int) -> dict[str, list[str]]:
    with connect(dsn) as conn:
        return scalar(
            conn,
            "select verification_skipped from migration.backups where backup_id = %s",
            (backup_id,),
        )


# ------------------------------------------------------------------ the role
def test_the_project_connects_as_a_non_superuser_with_supabase_postgres_privileges(target):
    with connect(target) as conn:
        role = conn.execute(
            "select rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "from pg_roles where rolname = current_user"
        ).fetchone()
        member_of = {
            r[0]
            for r in conn.execute(
                "select rolname from pg_roles where pg_has_role(current_user, oid, 'member') "
                "and rolname <> current_user"
            )
        }
        owners = dict(
            conn.execute(
                "select nspname, pg_get_userbyid(nspowner) from pg_namespace "
                "where nspname in ('auth', 'storage', 'extensions', 'public')"
            ).fetchall()
        )
    assert role == (local_env.SUPABASE_ROLE, False, True, True, True, True)
    assert {"anon", "authenticated", "service_role", "pg_read_all_data"} <= member_of
    assert "supabase_admin" not in member_of and "supabase_auth_admin" not in member_of
    assert owners == {
        "auth": "supabase_admin",
        "storage": "supabase_admin",
        "extensions": "supabase_admin",
        "public": "pg_database_owner",
    }
    assert set(auth_functions(target)) == {
        "auth.uid()",
        "auth.role()",
        "auth.email()",
        "auth.jwt()",
    }
    with pytest.raises(psycopg.errors.InsufficientPrivilege), connect(target) as conn:
        conn.execute("set session_replication_role = replica")


def test_privilege_check_passes_as_supabase_postgres_and_names_what_a_weaker_role_lacks(
    target, pg_socket
) -> None:
    assert missing_target_privileges(target) == []
    assert len(target_privileges(target)) >= 7
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        conn.execute("drop role if exists migration_weak_probe")
        conn.execute("create role migration_weak_probe login")
    try:
        weak = local_env.dsn(pg_socket, "e2e_supabase_target", "migration_weak_probe")
        missing = {p.privilege: p.needed_for for p in missing_target_privileges(weak)}
        assert {"CREATEDB", "BYPASSRLS", "USAGE, CREATE on schema public"} <= missing.keys()
        assert "CREATE on database e2e_supabase_target" in missing
        assert "scratch database" in missing["CREATEDB"]
    finally:
        with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
            conn.execute("drop role if exists migration_weak_probe")


# ------------------------------------------------------------------ phase, backup, rollbacks
def test_phase_backup_and_both_rollbacks_run_as_the_non_superuser(target, sandbox_dsn) -> None:
    """Supabase's auth helpers and default privileges are byte-identical at the end; every
    public table keeps RLS on, its grants and its policies through both rollback modes."""
    auth_before = auth_functions(target)
    defaults_before = default_privileges(target)
    runs.apply_schema(target, PHASE_1)  # the restore point then holds phase 1's tables
    security_before = table_security(target)
    assert security_before["tables"] and all(t[1] for t in security_before["tables"])

    point = backup.backup_and_verify(target, reason="before phase 1", phase=1, triggered_by="t")
    skipped = manifest_skipped(target, point)
    assert skipped["default_privileges"] == SUPABASE_ADMIN_DEFAULTS
    assert {"vector", "pg_stat_statements"} <= set(skipped["extensions"])
    assert "pg_trgm" not in skipped["extensions"], "a trusted extension is created"

    run_phase(sandbox_dsn, target, PHASE_1, "supabase-phase1-0")
    assert runs.latest_run_status(target, 1) == "validated"
    loaded = _count(target, "public.profiles")
    assert loaded > 0

    rollback.roll_back(target, 1, mode="delete", actor="pytest", confirm="1")
    assert _count(target, "public.profiles") == 0
    assert table_security(target) == security_before

    run_phase(sandbox_dsn, target, PHASE_1, "supabase-phase1-1")
    assert _count(target, "public.profiles") == loaded
    result = rollback.roll_back(target, 1, mode="restore", actor="pytest", confirm="1")
    assert result["backup_id"] == point
    assert _count(target, "public.profiles") == 0
    assert _count(target, "public.order_types") == 5, "the seeded rows of the restore point"
    assert table_security(target) == security_before, "grants, RLS and policies as backed up"
    assert tables_without_rls(target) == []
    assert default_privileges(target) == defaults_before
    assert auth_functions(target) == auth_before

    run_phase(sandbox_dsn, target, PHASE_1, "supabase-phase1-2")
    assert runs.latest_run_status(target, 1) == "validated"
    assert _count(target, "public.profiles") == loaded
    assert auth_functions(target) == auth_before


def _count(dsn: str, table: str) -> int:
    with connect(dsn) as conn:
        return int(scalar(conn, f"select count(*) from {table}"))


# ------------------------------------------------------------------ the daily backup DAG
@pytest.mark.airflow
def test_daily_backup_dag_runs_as_the_non_superuser(target, pg_socket, tmp_path) -> None:
    """`airflow dags test backup_target`: target and legacy dumped, verified, rotated."""
    metadata = local_env.ensure_database(pg_socket, "e2e_supabase_airflow", recreate=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        **local_env.environment(pg_socket),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
            "postgresql://", "postgresql+psycopg://"
        ),
        "AIRFLOW_CONN_LEGACY_DB": local_env.airflow_conn_uri(pg_socket, "e2e_legacy"),
        "AIRFLOW_CONN_SUPABASE_DB": local_env.airflow_conn_uri(
            pg_socket, "e2e_supabase_target", login=local_env.SUPABASE_ROLE
        ),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    conf = '{"include_legacy": true, "reason": "daily as supabase_postgres"}'
    for command in (["db", "migrate"], ["dags", "test", "backup_target", "-c", conf]):
        result = subprocess.run(
            [airflow, *command], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with connect(target) as conn:
        done = conn.execute(
            "select database, status, verification_skipped -> 'default_privileges' "
            "from migration.backups where reason = 'daily as supabase_postgres' order by 1"
        ).fetchall()
    assert done == [
        ("legacy", "verified", None),
        ("target", "verified", SUPABASE_ADMIN_DEFAULTS),
    ]
