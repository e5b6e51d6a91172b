"""Phase 2 end to end: sandbox legacy database, real PostgreSQL target, real Storage client.

One module-scoped migration (phase 1, then phase 2, with the local Storage server the
``supabase_storage`` fixture starts) feeds most tests; the rerun test runs phase 2 a second
time on the same target, so it comes after the tests that read the first run's state.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from include.entities import get_phase
from include.entities.phase2_relationships import FILES, ORDERS
from migration_ops import local_env, pipeline, runs
from migration_ops.db import connect, qualified, scalar
from migration_ops.errors import GateClosed
from migration_ops.validate import QuarantineLimit
from tests.e2e.conftest import SANDBOX_MEDIA, run_phase
from tests.e2e.fingerprint import assert_rerun_is_a_no_op, fingerprints
from tests.unit.staged_runs import staged_quarantine

pytestmark = pytest.mark.e2e
PHASE_1, PHASE_2 = get_phase(1), get_phase(2)
ROOT = Path(__file__).resolve().parents[2]
BUCKET = "legacy-files"


@dataclass
class Migrated:
    target: str
    run: runs.RunContext
    seconds: float
    fingerprints: dict[str, tuple[int, str]]


@pytest.fixture(scope="module")
def migrated(sandbox_dsn, pg_socket, supabase_storage) -> Migrated:
    target = local_env.ensure_supabase_database(pg_socket, "e2e_phase2_target", recreate=True)
    run_phase(sandbox_dsn, target, PHASE_1, "p2-phase1")
    started = time.monotonic()
    first = run_phase(sandbox_dsn, target, PHASE_2, "p2-first")
    return Migrated(target, first, time.monotonic() - started, fingerprints(target))


def _rows(dsn: str, query: str | sql.Composable, params: Any = None) -> list[dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _reconciliation(dsn: str, run_id: str) -> dict[str, tuple[int, int, int, int]]:
    return {
        r["entity"]: (r["source_rows"], r["loaded_rows"], r["merged_rows"], r["quarantined_rows"])
        for r in _rows(dsn, "select * from migration.reconciliation where run_id = %s", (run_id,))
    }


def _quarantine(dsn: str, entity: str) -> dict[int, set[str]]:
    """Open quarantine of an entity: legacy id → the rules holding it back."""
    held: dict[int, set[str]] = {}
    for r in _rows(
        dsn,
        "select legacy_id, rule from migration.quarantine where entity = %s and resolved_at is null",
        (entity,),
    ):
        held.setdefault(r["legacy_id"], set()).add(r["rule"])
    return held


# ----------------------------------------------------------------------------- reconciliation
def test_every_entity_reconciles_against_the_legacy_counts(migrated, sandbox_dsn) -> None:
    counts = _reconciliation(migrated.target, migrated.run.run_id)
    assert set(counts) == {e.name for e in PHASE_2.entities}
    for entity in PHASE_2.entities:
        source, loaded, merged, quarantined = counts[entity.name]
        with connect(sandbox_dsn) as conn:
            legacy = scalar(
                conn,
                sql.SQL("select count(*) from {}").format(
                    sql.Identifier(entity.primary_source.table)
                ),
            )
        with connect(migrated.target) as conn:
            in_target = scalar(
                conn,
                sql.SQL("select count(*) from {} where {} is not null").format(
                    qualified(entity.target_table), sql.Identifier(entity.key)
                ),
            )
        assert source == legacy, entity.name
        assert source == loaded + merged + quarantined, entity.name
        assert in_target == loaded, entity.name
    assert runs.latest_run_status(migrated.target, 2) == "validated"
    print(f"\nphase 2 first run: {migrated.seconds:.1f}s")


def test_every_quarantined_row_names_its_entity_id_and_rule(migrated) -> None:
    rows = _rows(
        migrated.target,
        "select entity, legacy_id, rule, detail from migration.quarantine where last_run_id = %s",
        (migrated.run.run_id,),
    )
    assert rows, "the sandbox's missing media must be quarantined"
    for row in rows:
        assert row["rule"].startswith(f"{row['entity']}.") and row["detail"]
        assert row["legacy_id"] is not None


def test_links_wait_for_offices_quarantined_in_phase_1(migrated, sandbox_dsn) -> None:
    held_offices = set(_quarantine(migrated.target, "offices"))
    assert held_offices, "the sandbox injects impossible tax rates"
    owners = _quarantine(migrated.target, "office_owners")
    assert set(owners) == held_offices
    assert all("office_owners.office_resolves" in rules for rules in owners.values())
    m2m = _rows(  # staging is empty once loaded: read the links from legacy
        sandbox_dsn,
        "select id as legacy_office_doctor_id, office_id as legacy_office_id "
        "from dispatch_office_doctors",
    )
    held_links = {
        r["legacy_office_doctor_id"] for r in m2m if r["legacy_office_id"] in held_offices
    }
    assert {
        k
        for k, rules in _quarantine(migrated.target, "doctor_offices").items()
        if "doctor_offices.office_resolves" in rules
    } == held_links


def test_every_office_has_one_ownership_and_every_doctor_one_primary_office(migrated) -> None:
    rows = _rows(
        migrated.target,
        """
        select d.doctor_id, d.office_id, d.is_owner, d.is_primary, d.legacy_office_doctor_id,
               d.legacy_owner_office_id, d.legacy_office_id
        from public.doctor_offices as d
        """,
    )
    owners = [r for r in rows if r["is_owner"]]
    assert len({r["legacy_owner_office_id"] for r in owners}) == len(owners)
    assert all(r["legacy_owner_office_id"] == r["legacy_office_id"] for r in owners)
    by_doctor: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_doctor.setdefault(row["doctor_id"], []).append(row)
    for links in by_doctor.values():
        primary = [r for r in links if r["is_primary"]]
        assert len(primary) == 1
        if any(r["is_owner"] for r in links):
            assert primary[0]["is_owner"], "an owned office wins"
    shared = [r for r in rows if r["is_owner"] and r["legacy_office_doctor_id"] is not None]
    assert shared, "owners with an m2m row land on that one link"


# ----------------------------------------------------------------------------- orders
def test_every_order_has_its_patients_doctor_and_office(migrated) -> None:
    disagreeing = _rows(
        migrated.target,
        """
        select o.legacy_instruction_id
        from public.orders as o
        join public.profiles as p on p.id = o.patient_id
        where o.doctor_id is distinct from p.patient_doctor_id
           or o.office_id is distinct from p.patient_office_id
           or ('doctor_missing' = any(o.flags)) <> (o.doctor_id is null)
           or ('office_missing' = any(o.flags)) <> (o.office_id is null)
        """,
    )
    assert disagreeing == []
    flagged = scalar_query(
        migrated.target, "select count(*) from public.orders where 'office_missing' = any(flags)"
    )
    assert flagged > 0, "patients without an office exist in the sandbox (legacy-system.md §1c #10)"


def scalar_query(dsn: str, query: str) -> Any:
    with connect(dsn) as conn:
        return scalar(conn, query)


# The phase-2 defect classes the sandbox injects and the documented outcome (docs/phase2.md):
# a check on the migrated row, or the quarantine rule that holds the row back.
DEFECT_OUTCOMES: dict[str, Any] = {
    "order_soft_deleted": lambda r: r["deleted_at"] is not None,
    "order_status_unknown": lambda r: (
        r["status"] is None and "status_unknown" in r["flags"] and r["legacy_status"] in (3, 5, 9)
    ),
    "exports_invalid_json": lambda r: r["exports"] is None and "legacy_exports" in r["metadata"],
    "text_mojibake": lambda r: "legacy_notes" in r["metadata"] and "Ã" not in (r["notes"] or ""),
    "text_multilingual": lambda r: "legacy_notes" not in r["metadata"],
    "jaw_unreferenced": lambda r: r["arch"] is None and r["flags"] == ["unreferenced"],
    "project_shared": lambda r: r["order_id"] is not None and r["plans"] >= 2,
    "file_double_extension": lambda r: (
        not r["file_name"].endswith(".stl.stl")
        and r["extension"] == "stl"
        and r["mime_type"] == "model/stl"
        and r["metadata"]["legacy_file_name"].endswith(".stl.stl")
    ),
    "file_missing_media": "files.source_object_present",
}
TARGET_OF = {  # legacy table → (entity, query of target rows keyed by that table's id)
    "dispatch_instruction": ("orders", "select *, legacy_instruction_id as k from public.orders"),
    "dispatch_jaw": ("jaws", "select *, legacy_jaw_id as k from public.jaws"),
    "dispatch_project": (
        "projects",
        "select p.*, p.legacy_project_id as k, (select count(*) from public.treatment_plans t "
        "where t.project_id = p.id) as plans from public.projects as p",
    ),
    "dispatch_file": ("files", "select *, legacy_file_id as k from public.files"),
}


def test_every_injected_defect_is_repaired_by_its_rule_or_quarantined(
    migrated, sandbox_dsn
) -> None:
    injected = _rows(
        sandbox_dsn,
        "select defect, table_name, legacy_id from sandbox.injected_defects "
        "where table_name = any(%s)",
        (list(TARGET_OF),),
    )
    assert {d["defect"] for d in injected} == set(DEFECT_OUTCOMES), "every class is covered"
    loaded = {
        (table, row["k"]): row
        for table, (_, query) in TARGET_OF.items()
        for row in _rows(migrated.target, query)
    }
    quarantined = {entity: _quarantine(migrated.target, entity) for entity, _ in TARGET_OF.values()}
    failures = []
    for defect in injected:
        entity, _ = TARGET_OF[defect["table_name"]]
        expected = DEFECT_OUTCOMES[defect["defect"]]
        row = loaded.get((defect["table_name"], defect["legacy_id"]))
        held = quarantined[entity].get(defect["legacy_id"], set())
        if isinstance(expected, str):
            ok = expected in held
        else:  # repaired; or held back by another rule of its entity (two defects on one row)
            ok = expected(row) if row is not None else bool(held)
        if not ok:
            failures.append((defect["defect"], defect["legacy_id"]))
    assert not failures, f"defects neither repaired nor quarantined: {failures[:10]}"


# ----------------------------------------------------------------------------- objects
def test_objects_arrived_with_their_bytes_and_checksums(
    migrated, sandbox_dsn, supabase_storage
) -> None:
    manifest = _rows(
        sandbox_dsn, "select file_id, relative_path, sha256, missing from sandbox.media_manifest"
    )
    files = {
        r["legacy_file_id"]: r
        for r in _rows(
            migrated.target,
            "select legacy_file_id, storage_bucket, storage_path, sha256, mime_type "
            "from public.files",
        )
    }
    stored = [r for r in files.values() if r["storage_path"] is not None]
    assert len(stored) == sum(not m["missing"] for m in manifest), "exactly the expected objects"
    for entry in manifest:
        if entry["missing"]:
            assert entry["file_id"] not in files
            continue
        row = files[entry["file_id"]]
        assert row["storage_bucket"] == BUCKET and row["sha256"] == entry["sha256"]
        arrived = supabase_storage.storage.object_path(BUCKET, row["storage_path"]).read_bytes()
        assert arrived == (SANDBOX_MEDIA / entry["relative_path"]).read_bytes()
        assert hashlib.sha256(arrived).hexdigest() == entry["sha256"]
        info = supabase_storage.storage.info(BUCKET, row["storage_path"])
        assert info["metadata"] == {"sha256": entry["sha256"]}
        assert info["content_type"] == row["mime_type"]


# ----------------------------------------------------------------------------- gate
def test_gate_refuses_phase_2_until_phase_1_validated(migrated, supabase_db) -> None:
    runs.check_gate(migrated.target, PHASE_2)  # phase 1 validated on this target

    fresh = supabase_db("gate")
    with pytest.raises(GateClosed, match="phase 2 cannot start: phase 1 has never run"):
        runs.check_gate(fresh, PHASE_2)
    runs.apply_schema(fresh, PHASE_1)
    runs.begin_run(fresh, PHASE_1, "p1-broken", triggered_by="pytest", params={})
    runs.mark_failed(fresh, "p1-broken")
    with pytest.raises(GateClosed, match="phase 1 latest run is 'failed'"):
        runs.check_gate(fresh, PHASE_2)


@pytest.mark.airflow
def test_gate_task_fails_a_manual_run_through_airflow(
    tmp_path, pg_socket, make_db, supabase_db
) -> None:
    """`airflow dags test` of phase 2 on a target where phase 1 never ran: the gate task fails."""
    target = supabase_db("gate_airflow")
    metadata = make_db("gate_airflow_meta")
    target_db = target.split("/")[-1].split("?")[0]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MIGRATION_"))},
        **local_env.environment(pg_socket),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
            "postgresql://", "postgresql+psycopg://"
        ),
        "AIRFLOW_CONN_LEGACY_DB": local_env.airflow_conn_uri(pg_socket, "e2e_legacy"),
        "AIRFLOW_CONN_SUPABASE_DB": local_env.airflow_conn_uri(
            pg_socket, target_db, login=local_env.SUPABASE_ROLE
        ),
        "MIGRATION_LOCAL_DIR": str(tmp_path / "local"),
        "MIGRATION_REPORTS_DIR": str(tmp_path / "reports"),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    for command in (["db", "migrate"], ["dags", "test", PHASE_2.dag_id]):
        result = subprocess.run(
            [airflow, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "phase 2 cannot start: phase 1 has never run" in output
    assert runs.latest_run_status(target, 2) is None, "the gate runs before anything is recorded"


# ----------------------------------------------------------------------------- injected defects
def test_injected_rows_are_quarantined_with_their_rules(migrated, sandbox_dsn) -> None:
    """Rows injected into staging after the extract: each one is held back by its rule."""
    target = migrated.target
    run = runs.begin_run(target, PHASE_2, "p2-inject", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, run, [ORDERS])
    with connect(target) as conn:
        conn.execute(
            """
            insert into staging.orders__dispatch_instruction
                (id, patient_id, course_id, status, cbct, comprehensive, accept_extraction, deleted,
                 upper_jaw_id)
            values (900001, -1, 1, 1, false, false, false, false, null),
                   (900002, (select min(patient_id) from staging.orders__dispatch_instruction),
                    999, 1, false, false, false, false, null),
                   (900003, (select min(patient_id) from staging.orders__dispatch_instruction),
                    1, 1, false, false, false, false, -7)
            """
        )
    pipeline.transform_step(target, run, ORDERS)
    pipeline.validate_step(target, run, ORDERS, limit=QuarantineLimit())
    pipeline.extract_step(sandbox_dsn, target, run, [FILES])
    with connect(target) as conn:
        conn.execute(
            """
            insert into staging.files__dispatch_file (id, uid, name, ext, size, type, instruction_id,
                                                     created_at)
            values (900001, gen_random_uuid(), 'x', 'pdf', 1, 13, 900001, now()),
                   (900002, gen_random_uuid(), 'y', 'pdf', -1, 13, null, now())
            """
        )
    pipeline.transform_step(target, run, FILES)
    pipeline.validate_step(target, run, FILES, limit=QuarantineLimit())
    runs.mark_failed(target, "p2-inject")  # never loaded: leave no running run behind
    decisions = staged_quarantine(target, [ORDERS, FILES])  # recorded only by a load
    held = {(e, i, rule) for e, rows in decisions.items() for i, rule in rows if i >= 900000}
    assert held == {
        ("orders", 900001, "orders.patient_resolves"),
        ("orders", 900002, "orders.order_type_resolves"),
        ("orders", 900003, "orders.jaws_resolve"),
        ("files", 900001, "files.order_resolves"),
        ("files", 900002, "files.size_not_negative"),
    }


# ----------------------------------------------------------------------------- rerun (last)
def test_rerun_changes_nothing_and_resumes_only_what_storage_lacks(
    migrated, sandbox_dsn, supabase_storage
) -> None:
    target = migrated.target
    stored = _rows(target, "select storage_path from public.files where storage_path is not null")
    lost = stored[0]["storage_path"]
    kept = {r["storage_path"] for r in stored[1:]}
    versions = {k: supabase_storage.storage.info(BUCKET, k)["version"] for k in kept}
    supabase_storage.storage.remove(BUCKET, [lost])  # e.g. a copy killed before this object

    second = assert_rerun_is_a_no_op(sandbox_dsn, target, PHASE_2, "p2-second")

    assert fingerprints(target) == migrated.fingerprints, "every public table byte-identical"
    assert _reconciliation(target, second.run_id) == _reconciliation(target, migrated.run.run_id)
    assert supabase_storage.storage.info(BUCKET, lost), "the missing object was copied again"
    assert {k: supabase_storage.storage.info(BUCKET, k)["version"] for k in kept} == versions, (
        "objects already stored with the same sha256 are not uploaded again"
    )


def test_orders_of_linked_duplicates_resolve_to_their_own_patient_and_read_as_one_person(
    migrated, sandbox_dsn
) -> None:
    """Linked, not destroyed (decision 0012): children keep their own legacy lineage."""
    with connect(sandbox_dsn) as conn:
        legacy = conn.execute(
            "select i.id, p.user_id from dispatch_instruction i "
            "join dispatch_patient p on p.id = i.patient_id where p.user_id in (6, 16) order by 1"
        ).fetchall()
    rows = _rows(
        migrated.target,
        """
        select o.legacy_instruction_id, p.legacy_user_id, s.legacy_user_id as person
        from public.orders as o
        join public.profiles as p on p.id = o.patient_id
        join public.profile_persons as pp on pp.profile_id = p.id
        join public.profiles as s on s.id = pp.person_id
        where p.legacy_user_id in (6, 16) order by 1
        """,
    )
    assert legacy, "the linked pair (6 -> survivor 16) has orders in the sandbox"
    assert [(r["legacy_instruction_id"], r["legacy_user_id"]) for r in rows] == legacy
    assert {r["person"] for r in rows} == {16}
