"""Phase 1 end to end on a sandbox legacy database and a real PostgreSQL target."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql

from include.entities import get_phase
from include.entities.phase1_core import OFFICES, PROFILES
from migration_ops import pipeline, reports, runs
from migration_ops.db import connect, qualified, scalar
from migration_ops.errors import SchemaDriftError, ValidationFailed
from migration_ops.validate import QuarantineLimit
from tests.e2e.fingerprint import assert_rerun_is_a_no_op, fingerprints, table_fingerprint
from tests.e2e.kill_harness import kill_load_at_its_checkpoint

pytestmark = pytest.mark.e2e
PHASE_1 = get_phase(1)


def reconciliation(dsn: str, run_id: str) -> dict[str, dict[str, int]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "select entity, source_rows, loaded_rows, merged_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s",
            (run_id,),
        ).fetchall()
    return {
        r[0]: {"source": r[1], "loaded": r[2], "merged": r[3], "quarantined": r[4]} for r in rows
    }


def legacy_count(dsn: str, table: str) -> int:
    with connect(dsn) as conn:
        return int(scalar(conn, sql.SQL("select count(*) from {}").format(sql.Identifier(table))))


@pytest.fixture(scope="module")
def migrated(sandbox_dsn, pg_socket):
    """Phase 1 run twice into one target; yields (target dsn, first run, fingerprints after run 1)."""
    from migration_ops import local_env
    from tests.e2e.conftest import run_phase

    target = local_env.ensure_supabase_database(pg_socket, "e2e_phase1_target", recreate=True)
    first = run_phase(sandbox_dsn, target, PHASE_1, "phase1-first")
    return target, first, fingerprints(target)


def test_every_entity_reconciles_against_the_legacy_counts(migrated, sandbox_dsn) -> None:
    target, first, _ = migrated
    counts = reconciliation(target, first.run_id)
    assert set(counts) == {e.name for e in PHASE_1.entities}
    for entity in PHASE_1.entities:
        c = counts[entity.name]
        assert c["source"] == legacy_count(sandbox_dsn, entity.primary_source.table)
        assert c["source"] == c["loaded"] + c["merged"] + c["quarantined"]
        with connect(target) as conn:
            in_target = scalar(
                conn,
                sql.SQL("select count(*) from {} where {} is not null").format(
                    qualified(entity.target_table), sql.Identifier(entity.key)
                ),
            )
        # a linked duplicate keeps its row (linked, not destroyed) but counts as merged (0012)
        assert in_target == c["loaded"] + c["merged"], entity.name
    assert runs.latest_run_status(target, 1) == "validated"


def test_every_quarantined_row_names_entity_id_and_rule(migrated) -> None:
    target, first, _ = migrated
    with connect(target) as conn:
        rows = conn.execute(
            "select entity, legacy_id, rule, detail from migration.quarantine where last_run_id = %s",
            (first.run_id,),
        ).fetchall()
    assert rows, "the sandbox injects defects that must be quarantined (e.g. impossible tax rates)"
    for entity, legacy_id, rule, detail in rows:
        assert entity and legacy_id is not None and rule.startswith(f"{entity}.") and detail


def test_rerun_changes_nothing_and_adds_no_quarantine_duplicates(migrated, sandbox_dsn) -> None:
    target, first, before = migrated
    second = assert_rerun_is_a_no_op(sandbox_dsn, target, PHASE_1, "phase1-second")
    assert fingerprints(target) == before, "identical to the first run's tables, too"
    assert reconciliation(target, second.run_id) == reconciliation(target, first.run_id)


def test_reports_carry_no_legacy_values(migrated, sandbox_dsn, tmp_path) -> None:
    target, first, _ = migrated
    out = reports.write(target, first.run_id, tmp_path)
    names = ("report.json", "reconciliation.md", "dedup.json", "dedup.md")
    text = "".join((out / name).read_text() for name in names)
    with connect(sandbox_dsn) as conn:
        samples = conn.execute(
            "select email, last_name from auth_user where email like '%@%' and length(last_name) > 3 limit 50"
        ).fetchall()
        linked = conn.execute(  # the de-duplicated pair's own values (dedup report)
            "select u.first_name, u.last_name, p.birthdate::text from auth_user u "
            "join dispatch_patient p on p.user_id = u.id where u.id in (6, 16)"
        ).fetchall()
    assert samples, "the sandbox has users with e-mails and names to look for"
    for email, last_name in samples:
        assert email not in text and last_name not in text
    assert len(linked) == 2
    for value in (v for row in linked for v in row):
        assert value.strip() not in text
    dedup = json.loads((out / "dedup.json").read_text())
    assert [(c["survivor"], c["members"]) for c in dedup["clusters"]] == [(16, [6, 16])]
    assert dedup["clusters"][0]["links"][0]["pair"] == [6, 16]


def test_killed_load_retried_converges(sandbox_dsn, pg_socket) -> None:
    """Kill the profiles load mid-transaction; the retry converges to a clean run's rows."""
    from migration_ops import local_env
    from tests.e2e.conftest import run_phase

    clean = local_env.ensure_supabase_database(pg_socket, "e2e_kill_clean", recreate=True)
    run_phase(sandbox_dsn, clean, PHASE_1, "clean")
    killed = local_env.ensure_supabase_database(pg_socket, "e2e_kill_target", recreate=True)
    runs.apply_schema(killed, PHASE_1)
    run = runs.begin_run(killed, PHASE_1, "killed", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, killed, run, PHASE_1.ordered())
    for entity in PHASE_1.ordered():
        if entity is not PROFILES:
            pipeline.run_entity(killed, run, entity, legacy_dsn=sandbox_dsn)
    pipeline.transform_step(killed, run, PROFILES)
    pipeline.dedup_step(killed, run, PROFILES)
    pipeline.validate_step(killed, run, PROFILES, limit=QuarantineLimit())

    error = kill_load_at_its_checkpoint(
        killed,
        "killed",
        "profiles",
        lambda: pipeline.load_step(killed, run, PROFILES, legacy_dsn=sandbox_dsn),
    )
    assert isinstance(error, psycopg.OperationalError)
    assert table_fingerprint(killed, "public.profiles")[0] == 0, (
        "the killed transaction left rows behind"
    )

    pipeline.load_step(killed, run, PROFILES, legacy_dsn=sandbox_dsn)  # the retry
    pipeline.checkpoint_step(killed, run, PROFILES)
    runs.finish_run(killed, run, PHASE_1)
    assert _comparable(killed) == _comparable(clean)


def _comparable(dsn: str) -> dict[str, list[tuple]]:
    """Target rows without generated ids/timestamps (they differ between two databases)."""
    result = {}
    with connect(dsn) as conn:
        for entity in PHASE_1.entities:
            columns = [
                r[0]
                for r in conn.execute(
                    "select column_name from information_schema.columns where table_schema = 'public' "
                    "and table_name = %s and data_type not in ('uuid') and column_name not in "
                    "('created_at', 'updated_at') order by ordinal_position",
                    (entity.target_table.split(".")[1],),
                )
            ]
            query = sql.SQL("select {} from {} order by {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                qualified(entity.target_table),
                sql.Identifier(entity.conflict_key),
            )
            result[entity.name] = conn.execute(query).fetchall()
    return result


def test_suite_level_failure_blocks_the_load(sandbox_dsn, pg_socket) -> None:
    from migration_ops import local_env

    target = local_env.ensure_supabase_database(pg_socket, "e2e_suite_fail", recreate=True)
    runs.apply_schema(target, PHASE_1)
    run = runs.begin_run(target, PHASE_1, "dup", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, run, [OFFICES])
    pipeline.transform_step(target, run, OFFICES)
    with connect(target) as conn:  # a fan-out bug in a transform: one office twice
        conn.execute(
            "insert into staging.offices__transformed select * from staging.offices__transformed limit 1"
        )
    with pytest.raises(ValidationFailed, match=r"\[offices\].*suite-level"):
        pipeline.validate_step(target, run, OFFICES, limit=QuarantineLimit(fraction=1.0))
    assert table_fingerprint(target, "public.offices")[0] == 0
    with connect(target) as conn:
        assert (
            scalar(conn, "select stage from migration.checkpoints where run_id = 'dup'") == "failed"
        )


def test_quarantine_share_above_the_limit_fails_the_entity(sandbox_dsn, pg_socket) -> None:
    from migration_ops import local_env

    target = local_env.ensure_supabase_database(pg_socket, "e2e_fraction", recreate=True)
    runs.apply_schema(target, PHASE_1)
    run = runs.begin_run(target, PHASE_1, "strict", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, run, [OFFICES])
    pipeline.transform_step(target, run, OFFICES)
    with pytest.raises(ValidationFailed, match="above the run's limit"):
        pipeline.validate_step(
            target, run, OFFICES, limit=QuarantineLimit(fraction=0.0, allowance=0)
        )


def test_schema_drift_names_entity_table_and_rule(sandbox_dsn, make_db, supabase_db) -> None:
    legacy = make_db("drift")
    with connect(legacy) as conn:
        conn.execute("create table dispatch_office (id integer primary key, name text)")
    target = supabase_db("drift_target")
    runs.apply_schema(target, PHASE_1)
    run = runs.begin_run(target, PHASE_1, "drift", triggered_by="pytest", params={})
    with pytest.raises(
        SchemaDriftError,
        match=r"\[offices\] rule schema.columns_present: legacy table dispatch_office lacks",
    ):
        pipeline.extract_step(legacy, target, run, [OFFICES])


# Each phase-1 defect class the sandbox injects, and the documented outcome (docs/mapping.md):
# a check on the migrated row (repaired), or the quarantine rule that must hold the row back.
# Duplicates must still load, each with its own row (de-duplication links, never deletes).
def _has(key: str):
    return lambda row: key in row["metadata"]


DEFECT_OUTCOMES = {
    "email_empty": lambda r: r["email"] is None,
    "email_invalid": lambda r: r["email"] is None and "legacy_email" in r["metadata"],
    "user_no_group": lambda r: r["profile_type"] is not None,
    "user_multi_group": lambda r: (
        r["profile_type"] is not None and "legacy_group_ids" in r["metadata"]
    ),
    "test_account": lambda r: (
        r["is_test_account"] or r["profile_type"] in ("technician", "master", "admin")
    ),
    "duplicate_doctor": lambda r: r["legacy_user_id"] is not None,
    "name_blank": lambda r: r["first_name"] is None or r["last_name"] is None,
    "duplicate_patient": lambda r: r["legacy_patient_id"] is not None,
    "suffix_missing": lambda r: r["patient_suffix"] is None,
    "suffix_malformed": lambda r: r["patient_suffix"] is None and "legacy_suffix" in r["metadata"],
    "schemes_invalid_json": lambda r: r["schemes"] is None and "legacy_schemes" in r["metadata"],
    "sex_invalid": lambda r: r["gender"] is None and "legacy_sex" in r["metadata"],
    "patient_status_unknown": lambda r: (
        r["patient_status"] is None and "legacy_status" in r["metadata"]
    ),
    "birthdate_implausible": lambda r: (
        r["date_of_birth"] is None and "legacy_birthdate" in r["metadata"]
    ),
    "patient_no_doctor": lambda r: (
        r["patient_doctor_id"] is None and r["legacy_doctor_user_id"] is None
    ),
    "patient_no_office": lambda r: r["patient_office_id"] is None and r["legacy_office_id"] is None,
    "tax_rate_percent": lambda r: 0 <= r["tax_rate"] < 1 and "legacy_tax_rate" in r["metadata"],
    "tax_rate_invalid": "offices.tax_rate_fraction",
    "country_variant": lambda r: r["country_code"] is not None or "legacy_country" in r["metadata"],
    "country_null": lambda r: r["country_code"] is None,
    "country_unknown": lambda r: r["country_code"] is None and "legacy_country" in r["metadata"],
}
TARGET_OF = {  # legacy table → (entity, target table, column holding that table's id)
    "auth_user": ("profiles", "public.profiles", "legacy_user_id"),
    "dispatch_patient": ("profiles", "public.profiles", "legacy_patient_id"),
    "dispatch_office": ("offices", "public.offices", "legacy_office_id"),
}


def test_every_injected_defect_is_repaired_by_its_rule_or_quarantined(
    migrated, sandbox_dsn
) -> None:
    target, _, _ = migrated
    with connect(sandbox_dsn) as conn:
        injected = conn.execute(
            "select defect, table_name, legacy_id from sandbox.injected_defects where table_name = any(%s)",
            (list(TARGET_OF),),
        ).fetchall()
    assert {d for d, _, _ in injected} == set(DEFECT_OUTCOMES), (
        "every phase-1 defect class is covered"
    )
    with connect(target) as conn:
        conn.row_factory = psycopg.rows.dict_row
        rows = {
            (table, row[column]): row
            for table, (_, target_table, column) in TARGET_OF.items()
            for row in conn.execute(sql.SQL("select * from {}").format(qualified(target_table)))
        }
        quarantined = {
            (r["entity"], r["legacy_id"]): r["rule"]
            for r in conn.execute(
                "select entity, legacy_id, rule from migration.quarantine where resolved_at is null"
            )
        }
    failures = []
    for defect, table, legacy_id in injected:
        entity, _, column = TARGET_OF[table]
        expected = DEFECT_OUTCOMES[defect]
        if isinstance(expected, str):
            ok = quarantined.get((entity, legacy_id)) == expected
        elif (table, legacy_id) in rows:
            ok = expected(rows[(table, legacy_id)])
        else:  # not loaded: then it must be quarantined under some rule of its entity
            key = legacy_id if column != "legacy_patient_id" else None
            ok = key is not None and (entity, key) in quarantined
        if not ok:
            failures.append((defect, table, legacy_id))
    assert not failures, f"defects neither repaired nor quarantined: {failures[:10]}"


# ------------------------------------------------------------------ de-duplication ----
def _truth_pairs(sandbox_dsn: str, target: str) -> set[tuple[int, int]]:
    """The sandbox ledger's duplicate patients as (smaller, larger) auth_user id pairs."""
    with connect(sandbox_dsn) as conn:
        ledger = conn.execute(
            "select legacy_id, related_id from sandbox.injected_defects "
            "where defect = 'duplicate_patient'"
        ).fetchall()
    with connect(target) as conn:
        user_of = dict(
            conn.execute(
                "select legacy_patient_id, legacy_user_id from public.profiles "
                "where legacy_patient_id is not null"
            ).fetchall()
        )
    return {tuple(sorted((user_of[copy], user_of[original]))) for copy, original in ledger}


def _linked_pairs(target: str) -> set[tuple[int, int]]:
    with connect(target) as conn:
        rows = conn.execute(
            "select legacy_user_id, merged_into_legacy_user_id from public.profiles "
            "where merged_into is not null"
        ).fetchall()
    return {tuple(sorted(r)) for r in rows}


def test_dedup_links_the_injected_duplicates_without_destroying_them(migrated, sandbox_dsn) -> None:
    target, first, _ = migrated
    truth = _truth_pairs(sandbox_dsn, target)
    assert truth == {(6, 16)}, "scale 0.01, seed 11: one injected duplicate pair"
    assert _linked_pairs(target) == truth, "found, and nothing else linked"
    counts = reconciliation(target, first.run_id)["profiles"]
    assert (counts["source"], counts["loaded"], counts["merged"]) == (102, 101, 1)
    with connect(target) as conn:
        rows = conn.execute(
            "select p.legacy_user_id, p.legacy_patient_id, pp.person_id = s.id "
            "from public.profiles p join public.profile_persons pp on pp.profile_id = p.id "
            "join public.profiles s on s.legacy_user_id = 16 "
            "where p.legacy_user_id in (6, 16) order by 1"
        ).fetchall()
        link = conn.execute(
            "select match_probability, agreement, linked_by from migration.dedup_links "
            "where entity = 'profiles' and legacy_id_l = 6 and legacy_id_r = 16"
        ).fetchone()
        members = conn.execute(
            "select count(*), array_agg(array[legacy_id, survivor_legacy_id]) filter "
            "(where legacy_id <> survivor_legacy_id) from migration.dedup_members "
            "where run_id = %s",
            (first.run_id,),
        ).fetchone()
    # both keep their own row and legacy ids; both read as one person: the survivor (16)
    assert rows == [(6, 555, True), (16, 1019, True)]
    # 85: user 60 (patient row, suffix 49SW, groups 1 and 2) is a patient by the §1b suffix rule
    assert members == (85, [[6, 16]]), "85 patient candidates (no test accounts), one linked"
    probability, agreement, linked_by = link
    assert probability >= 0.9 and linked_by == "model"
    assert set(agreement) == {"first_name", "last_name", "birthdate", "sex", "email", "doctor"}
    assert set(agreement.values()) <= {"exact", "similar", "different", "missing"}


def test_unlink_and_review_decisions_end_to_end(
    sandbox_dsn, pg_socket, monkeypatch, capsys
) -> None:
    """unlink (CLI) undoes the cluster for good; a reviewer's link decision links a pair."""
    import argparse

    from migration_ops import local_env
    from migration_ops.dedup import cli as dedup_cli
    from tests.e2e.conftest import run_phase

    target = local_env.ensure_supabase_database(pg_socket, "e2e_dedup_unlink", recreate=True)
    run_phase(sandbox_dsn, target, PHASE_1, "dedup-1")
    assert _linked_pairs(target) == {(6, 16)}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SUPABASE_DB", local_env.airflow_conn_uri(pg_socket, "e2e_dedup_unlink")
    )
    args = argparse.Namespace(legacy_user_id=6, actor="reviewer-1", reason="two siblings")
    assert dedup_cli.run_unlink(args) == 0
    assert "unlinked legacy users [6, 16]" in capsys.readouterr().out
    assert _linked_pairs(target) == set()
    assert dedup_cli.run_unlink(args) == 1, "nothing left to undo"

    second = run_phase(sandbox_dsn, target, PHASE_1, "dedup-2")
    assert _linked_pairs(target) == set(), "the next run obeys the unlink"
    counts = reconciliation(target, second.run_id)["profiles"]
    assert (counts["loaded"], counts["merged"]) == (102, 0)
    with connect(target) as conn:
        assert conn.execute(
            "select decision, decided_by from migration.dedup_decisions"
        ).fetchall() == [("distinct", "reviewer-1")]
        assert (
            scalar(conn, "select count(*) from migration.audit_log where action = 'dedup_unlink'")
            == 1
        )
        assert scalar(conn, "select unlinked_at is not null from migration.dedup_links") is True
        # a reviewer changes their mind: the pair is linked again by decision, not by the model
        conn.execute("update migration.dedup_decisions set decision = 'link'")
    third = run_phase(sandbox_dsn, target, PHASE_1, "dedup-3")
    assert _linked_pairs(target) == {(6, 16)}
    assert reconciliation(target, third.run_id)["profiles"]["merged"] == 1
    with connect(target) as conn:
        assert conn.execute(
            "select linked_by, unlinked_at from migration.dedup_links"
        ).fetchall() == [("reviewer", None)]

    # the DAG param dedup_unlink: the dedup task undoes the cluster before de-duplicating
    fourth = runs.begin_run(target, PHASE_1, "dedup-4", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, fourth, [PROFILES])
    pipeline.transform_step(target, fourth, PROFILES)
    outcome = pipeline.dedup_step(target, fourth, PROFILES, unlink_ids=(16,), actor="airflow-user")
    assert (
        outcome["linked_pairs"] == 0 and outcome["candidates"] == 85
    )  # patients, no test accounts
    runs.mark_failed(target, "dedup-4")  # never loaded
    assert _linked_pairs(target) == set()
    with connect(target) as conn:
        assert conn.execute(
            "select decision, decided_by from migration.dedup_decisions"
        ).fetchall() == [("distinct", "airflow-user")]


def test_a_run_that_stages_only_a_delta_links_into_existing_clusters(
    sandbox_dsn, pg_socket
) -> None:
    """The nightly sync stages only what changed: a changed duplicate still finds its survivor."""
    from migration_ops import local_env
    from migration_ops.db import run_sql_file
    from tests.e2e.conftest import run_phase

    target = local_env.ensure_supabase_database(pg_socket, "e2e_dedup_delta", recreate=True)
    first = run_phase(sandbox_dsn, target, PHASE_1, "delta-1")
    run = runs.begin_run(target, PHASE_1, "delta-2", triggered_by="pytest", params={})
    pipeline.extract_step(sandbox_dsn, target, run, [PROFILES])
    pipeline.transform_step(target, run, PROFILES)
    with connect(target) as conn:  # what a delta run stages: the changed copy (user 6) only
        conn.execute("delete from staging.profiles__transformed where legacy_user_id <> 6")
        conn.execute(
            "update public.profiles set merged_into = null, merged_into_legacy_user_id = null"
        )
    outcome = pipeline.dedup_step(target, run, PROFILES)
    assert (outcome["candidates"], outcome["linked_pairs"], outcome["clusters"]) == (85, 1, 1)
    with connect(target) as conn:
        run_sql_file(conn, "load/profiles__link_duplicates.sql", settings=run.settings())
    assert _linked_pairs(target) == {(6, 16)}, "1 staged + 84 migrated patients compared"
    with connect(target) as conn:
        survivors = conn.execute(
            "select run_id, survivor_legacy_id from migration.dedup_members "
            "where legacy_id = 6 order by run_id"
        ).fetchall()
    assert survivors == [(first.run_id, 16), ("delta-2", 16)]
