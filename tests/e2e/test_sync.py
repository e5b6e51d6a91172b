"""The nightly sync: after full loads and syncs over a changing legacy database, the target
equals a fresh full load of that legacy database (removed rows excepted), and each known
failure class of cursor-based sync tools is caught (field-anchors §3)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from include.entities import LEGACY_PHASES, SYNC
from migration_ops import entity_checks, local_env, pipeline, runs, validate
from migration_ops.db import connect, qualified, scalar
from migration_ops.errors import GateClosed
from tests.e2e.conftest import copy_of_sandbox, run_phase
from tests.e2e.fingerprint import auth_functions
from tests.e2e.kill_harness import kill_load_at_its_checkpoint

pytestmark = pytest.mark.e2e

CURSOR_KINDS = ("updated_at", "insert_only")


def full_load(legacy: str, target: str, prefix: str) -> None:
    for phase in LEGACY_PHASES:
        run_phase(legacy, target, phase, f"{prefix}-phase{phase.number}")


def sync(legacy: str, target: str, run_id: str) -> runs.RunContext:
    runs.check_gate(target, SYNC)
    return run_phase(legacy, target, SYNC, run_id)


def counts(target: str, run_id: str) -> dict[str, tuple[int, int, int, int]]:
    """entity → (rows seen, inserted, updated, removed) of a sync run."""
    with connect(target) as conn:
        rows = conn.execute(
            "select entity, source_rows, inserted_rows, updated_rows, removed_rows "
            "from migration.checkpoints where run_id = %s",
            (run_id,),
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def live_rows(target: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every entity table without surrogate ids, load timestamps and removed rows."""
    result = {}
    with connect(target) as conn:
        conn.execute("set timezone = 'UTC'")  # the same instants print alike in both targets
        for table in dict.fromkeys(e.target_table for p in LEGACY_PHASES for e in p.entities):
            schema, name = table.split(".")
            columns = [
                r[0]
                for r in conn.execute(
                    "select column_name from information_schema.columns where table_schema = %s "
                    "and table_name = %s and data_type <> 'uuid' and column_name not in "
                    "('created_at', 'updated_at', 'legacy_removed_at') order by ordinal_position",
                    (schema, name),
                )
            ]
            removed = conn.execute(
                "select 1 from information_schema.columns where table_schema = %s "
                "and table_name = %s and column_name = 'legacy_removed_at'",
                (schema, name),
            ).fetchone()
            query = sql.SQL("select {} from {}{}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                qualified(table),
                sql.SQL(" where legacy_removed_at is null") if removed else sql.SQL(""),
            )
            result[table] = sorted((tuple(r) for r in conn.execute(query)), key=repr)
        result["quarantine"] = conn.execute(
            "select entity, legacy_id, rule from migration.quarantine where resolved_at is null "
            "order by 1, 2, 3"
        ).fetchall()
    return result


CHANGES = """
-- a new office, a new patient user of it, an order and a state for that order (parents and
-- children inserted together)
insert into dispatch_office (id, doctor_id, name, tax_rate, valid)
    select max(id) + 1, (select min(user_id) from auth_user_groups where group_id = 2),
           'Sync Office', 0.05, true from dispatch_office;
insert into auth_user (id, password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
    select max(id) + 1, 'pbkdf2_sha256$x', false, 'sync.patient', 'Sy', 'Nc', 'sync@example.com',
           false, true, now() from auth_user;
insert into dispatch_patient (id, user_id, doctor_id, office_id, status, suffix, updated_at)
    select (select max(id) + 1 from dispatch_patient), (select max(id) from auth_user),
           (select min(user_id) from auth_user_groups where group_id = 2),
           (select max(id) from dispatch_office), 1, 'SY01', now();
insert into dispatch_instruction (id, patient_id, course_id, status, updated_at)
    select max(id) + 1, (select max(id) from dispatch_patient), 1, 1, now()
    from dispatch_instruction;
insert into dispatch_state (id, status, "on", changed_at, instruction_id)
    select max(id) + 1, 11, true, now(), (select max(id) from dispatch_instruction)
    from dispatch_state;
-- two orders updated in one statement: they share one updated_at (a cursor tie)
update dispatch_instruction set notes = 'tie ' || id, updated_at = '2031-01-01T00:00:00Z'
    where id in (select id from dispatch_instruction order by id limit 2);
-- tables without timestamps: an office renamed, a template renamed
update dispatch_office set name = 'Renamed Office'
    where id = (select min(id) from dispatch_office where valid);
update dispatch_template set task_name = 'Renamed step' where id = (select min(id) from dispatch_template);
-- a doctor becomes a technician (a group change)
update auth_user_groups set group_id = 11
    where id = (select min(id) from auth_user_groups where group_id = 2 and user_id not in
                (select user_id from dispatch_patient));
-- a user loses one of several groups (a child row deleted: the profile is re-derived)
delete from auth_user_groups where id = (
    select max(id) from auth_user_groups where user_id in (
        select user_id from auth_user_groups group by user_id having count(*) > 1));
-- a patient moves to another doctor: their orders take the new doctor (no order row changed)
update dispatch_patient as p set doctor_id = (
        select max(g.user_id) from auth_user_groups as g
        where g.group_id = 2 and g.user_id is distinct from p.doctor_id)
    where p.id = (select patient_id from dispatch_instruction
                  where id = (select min(id) + 20 from dispatch_instruction));
-- deletes: a message and a plan comment
delete from dispatch_record_attachments where record_id = (select max(id) from dispatch_record);
delete from dispatch_record where id = (select max(id) from dispatch_record);
delete from dispatch_comment where id = (select max(id) from dispatch_comment);
"""


#: The id look-back of these syncs: insert-only tables re-read this many ids below the mark.
ID_LOOKBACK = 50


@pytest.fixture(scope="module")
def synced(pg_socket, sandbox_dsn, supabase_storage) -> Iterator[dict[str, Any]]:
    """Full load, a first sync, legacy changes (with a late commit), a second sync."""
    previous = os.environ.get("MIGRATION_SYNC_ID_LOOKBACK")
    os.environ["MIGRATION_SYNC_ID_LOOKBACK"] = str(ID_LOOKBACK)
    legacy = copy_of_sandbox(pg_socket, "e2e_sync_legacy")
    target = local_env.ensure_supabase_database(pg_socket, "e2e_sync_target", recreate=True)
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as admin:
        # the two servers in different time zones (timestamps must compare as instants)
        admin.execute("alter database e2e_sync_legacy set timezone = 'Pacific/Kiritimati'")
        admin.execute("alter database e2e_sync_target set timezone = 'America/Adak'")
    with connect(legacy) as conn:  # a state whose insert will commit late (id behind the mark)
        late_state = scalar(conn, "select max(id) - 2 from dispatch_state")
        late_row = conn.execute(
            "delete from dispatch_state where id = %s returning *", (late_state,)
        ).fetchone()
    auth = auth_functions(target)  # Supabase's own, as the fresh target has them
    full_load(legacy, target, "full")
    first = sync(legacy, target, "sync-1")
    with connect(legacy) as conn:
        conn.execute(CHANGES)
    second = sync(legacy, target, "sync-2")
    with connect(legacy) as conn:  # commits that arrive late, behind sync 2's watermarks
        cursor = scalar(conn, "select max(updated_at) from dispatch_instruction")
        # far below the id high-water mark: only the updated_at look-back can catch it
        late_order = scalar(conn, "select min(id) + 10 from dispatch_instruction")
        conn.execute(
            "update dispatch_instruction set notes = 'late', updated_at = %s where id = %s",
            (cursor - timedelta(minutes=30), late_order),
        )
        conn.execute("insert into dispatch_state values (%s, %s, %s, %s, %s, %s)", late_row)
    sync(legacy, target, "sync-late")
    yield {
        "auth": auth,
        "legacy": legacy,
        "target": target,
        "first": first,
        "second": second,
        "late_state": late_state,
        "late_order": late_order,
    }
    if previous is None:
        os.environ.pop("MIGRATION_SYNC_ID_LOOKBACK")
    else:
        os.environ["MIGRATION_SYNC_ID_LOOKBACK"] = previous


def test_after_syncs_the_target_equals_a_fresh_full_load(pg_socket, synced) -> None:
    fresh = local_env.ensure_supabase_database(pg_socket, "e2e_sync_fresh", recreate=True)
    full_load(synced["legacy"], fresh, "fresh")
    assert live_rows(synced["target"]) == live_rows(fresh)


def test_syncs_leave_supabases_auth_functions_byte_identical(synced) -> None:
    assert auth_functions(synced["target"]) == synced["auth"]


def test_the_delta_is_what_changed(synced) -> None:
    second = counts(synced["target"], "sync-2")
    assert second["offices"][1:3] == (1, 1), "one office inserted, one renamed"
    assert second["workflow_templates"][2] == 1
    assert second["order_state_history"][1] == 1, "the new state"
    late_sync = counts(synced["target"], "sync-late")
    assert late_sync["order_state_history"][1] == 1, "the late insert, id behind the mark"
    assert late_sync["orders"][2] == 1, "the late update, timestamp behind the cursor"
    assert second["messages"][3] == 1 and second["plan_comments"][3] == 1, "one removed each"
    with connect(synced["target"]) as conn:
        late = conn.execute(
            "select notes from public.orders where legacy_instruction_id = %s",
            (synced["late_order"],),
        ).fetchone()
        state_back = scalar(
            conn,
            "select legacy_removed_at is null from public.order_state_history "
            "where legacy_state_id = %s",
            (synced["late_state"],),
        )
        watermarks = scalar(conn, "select count(*) from migration.sync_cursors")
    assert late == ("late",), "a commit behind the cursor, inside the look-back, is caught"
    with connect(synced["legacy"]) as conn:
        moved, doctor = conn.execute(
            "select p.id, p.doctor_id from dispatch_patient as p "
            "where p.id = (select patient_id from dispatch_instruction "
            "where id = (select min(id) + 20 from dispatch_instruction))"
        ).fetchone()
    with connect(synced["target"]) as conn:
        doctors = conn.execute(
            "select distinct d.legacy_user_id from public.orders as o "
            "join public.profiles as pt on pt.id = o.patient_id "
            "join public.profiles as d on d.id = o.doctor_id where pt.legacy_patient_id = %s",
            (moved,),
        ).fetchall()
    assert doctors == [(doctor,)], "the moved patient's orders follow the patient's new doctor"
    assert state_back is True, "an insert committed late, its id behind the high-water mark"
    assert watermarks == 7, "one cursor per updated_at/insert-only source table"


def test_the_syncs_apply_the_linkage_model_the_full_load_estimated(synced) -> None:
    """A new patient re-clusters with the model phase 1 estimated (Splink: train, save, apply):
    the syncs computed clusters, none estimated a model again."""
    with connect(synced["target"]) as conn:
        trained = conn.execute(
            "select trained_run_id, trained_candidates > 0 from migration.dedup_models "
            "where entity = 'profiles'"
        ).fetchone()
        computed_by = scalar(
            conn, "select run_id from migration.dedup_inputs where entity = 'profiles'"
        )
    assert trained == ("full-phase1", True)
    assert computed_by.startswith("sync-"), "the new patient made a sync compute its clusters"


def test_a_sync_with_nothing_changed_reads_only_the_quarantine(synced) -> None:
    third = sync(synced["legacy"], synced["target"], "sync-3")
    assert {e: c[1:] for e, c in counts(synced["target"], third.run_id).items()} == {
        e.name: (0, 0, 0) for e in SYNC.entities
    }, "nothing inserted, updated or removed"
    with connect(synced["target"]) as conn:
        open_quarantine = dict(
            conn.execute(
                "select entity, count(*) from migration.quarantine where resolved_at is null "
                "group by entity"
            ).fetchall()
        )
        judged = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "select entity, judged_rows, carried_rows from migration.validation_results "
                "where run_id = %s and pass = 'transformed'",
                (third.run_id,),
            )
        }
    cursor_entities = {
        e.name for e in SYNC.entities if e.primary_source.change.kind in CURSOR_KINDS
    }
    seen_by_entity = counts(synced["target"], third.run_id)
    for entity, (seen, _, _, _) in seen_by_entity.items():
        window = ID_LOOKBACK + 3 if entity in cursor_entities else 0  # + the 2 cursor ties
        assert seen <= open_quarantine.get(entity, 0) + window, (entity, seen)
    assert set(judged) == {e.name for e in SYNC.entities}, "whole-entity checks ran for all"
    copied = {e.name for e in SYNC.entities if e.object_copy is not None}
    for entity, (rows, _) in judged.items():
        # an object copy fills its columns after validation: a re-read row differs before it
        window = ID_LOOKBACK + 3 if entity in copied else 0
        assert rows <= window, (
            f"{entity}: a delta already in the target as it is (empty, or a look-back read "
            "again) is not judged by Great Expectations, nor is a held-back row that came "
            "back unchanged"
        )
    carried = {e: c for e, (_, c) in judged.items() if e not in copied}
    assert carried == _held_by_row_local_rules(synced["target"], set(carried)), (
        "every held-back row came back unchanged and kept its verdict, without GX"
    )
    assert sum(carried.values()) > 0
    with connect(synced["target"]) as conn:
        memo_run = scalar(
            conn, "select run_id from migration.dedup_inputs where entity = 'profiles'"
        )
        members = {
            run_id: conn.execute(
                "select legacy_id, survivor_legacy_id, completeness from migration.dedup_members "
                "where run_id = %s and entity = 'profiles' order by legacy_id",
                (run_id,),
            ).fetchall()
            for run_id in (memo_run, third.run_id)
        }
    assert memo_run != third.run_id and members[third.run_id] == members[memo_run], (
        "same patients, same decisions: the de-duplication reused its clusters, without Splink"
    )


def _held_by_row_local_rules(target: str, entities: set[str]) -> dict[str, int]:
    """Open quarantine rows per entity held by a rule whose verdict depends on the row alone."""
    local = [
        e["meta"]["rule"]
        for entity in SYNC.entities
        for e in validate.load_suite(entity)["expectations"]
        if e["meta"].get("row_level") and not entity_checks.needs_whole_entity(e)
    ]
    with connect(target) as conn:
        held = dict(
            conn.execute(
                "select entity, count(distinct legacy_id) from migration.quarantine "
                "where resolved_at is null and rule = any(%s) group by entity",
                (local,),
            ).fetchall()
        )
    return {entity: held.get(entity, 0) for entity in entities}


def test_the_sync_refuses_to_run_before_phase_4_validated(supabase_db) -> None:
    target = supabase_db("sync_gate")
    with pytest.raises(GateClosed, match="the sync cannot start: phase 1 has never run"):
        runs.check_gate(target, SYNC)


def test_a_sync_killed_inside_a_load_converges_on_the_next_sync(synced) -> None:
    legacy, target = synced["legacy"], synced["target"]
    with connect(legacy) as conn:
        conn.execute("update dispatch_office set name = 'Killed Rename' where id = 2")
    run = runs.begin_run(target, SYNC, "sync-killed", triggered_by="pytest", params={})
    pipeline.extract_step(legacy, target, run, SYNC.ordered())
    offices = SYNC.ordered()[0]
    pipeline.transform_step(target, run, offices)
    pipeline.validate_step(target, run, offices, limit=pipeline.QuarantineLimit())
    error = kill_load_at_its_checkpoint(
        target, "sync-killed", "offices", lambda: pipeline.load_step(target, run, offices)
    )
    assert isinstance(error, psycopg.OperationalError)
    with connect(target) as conn:
        assert scalar(conn, "select name from public.offices where legacy_office_id = 2") != (
            "Killed Rename"
        )
    runs.mark_failed(target, "sync-killed")
    after = sync(legacy, target, "sync-after-kill")
    assert counts(target, after.run_id)["offices"][2] == 1, "the killed change loads now"
    with connect(target) as conn:
        assert scalar(conn, "select name from public.offices where legacy_office_id = 2") == (
            "Killed Rename"
        )


def _staged_count(conn: psycopg.Connection[Any], entity: str, suffix: str) -> int:
    return int(
        scalar(
            conn,
            sql.SQL("select count(*) from {}").format(
                sql.Identifier("staging", f"{entity}__{suffix}")
            ),
        )
    )


def test_a_quiet_night_reads_one_line_per_bucket_of_64_ids_not_the_rows(synced) -> None:
    """Nothing changed: legacy sends (bucket, count, fingerprint) lines only; no id of the
    primary tables and no row hash of the content tables is streamed (buckets.py)."""
    legacy, target = synced["legacy"], synced["target"]
    sync(legacy, target, "sync-before-quiet")  # whatever earlier tests changed is synced
    run = runs.begin_run(target, SYNC, "sync-quiet-extract", triggered_by="pytest", params={})
    pipeline.extract_step(legacy, target, run, SYNC.ordered())
    with connect(legacy) as conn:
        legacy_buckets = {
            e.name: scalar(
                conn,
                sql.SQL("select count(distinct id >> 6) from {}").format(
                    sql.Identifier(e.primary_source.table)
                ),
            )
            for e in SYNC.entities
        }
    with connect(target) as conn:
        streamed = {
            e.name: (
                _staged_count(conn, e.name, "sync_id_buckets"),
                _staged_count(conn, e.name, "sync_checked"),
                _staged_count(conn, e.name, "sync_present"),
                _staged_count(conn, e.name, "sync_differing"),
                _staged_count(conn, e.name, "sync_hashes"),
            )
            for e in SYNC.entities
        }
    runs.mark_failed(target, "sync-quiet-extract")
    assert streamed == {e.name: (legacy_buckets[e.name], 0, 0, 0, 0) for e in SYNC.entities}


def _marked_removed(target: str, table: str, key: str, legacy_id: int) -> bool:
    """Whether the target row of ``legacy_id`` carries ``legacy_removed_at``."""
    with connect(target) as conn:
        return bool(
            scalar(
                conn,
                sql.SQL("select legacy_removed_at is not null from {} where {} = %s").format(
                    qualified(table), sql.Identifier(key)
                ),
                (legacy_id,),
            )
        )


def test_a_row_deleted_then_back_is_marked_then_unmarked(synced) -> None:
    legacy, target = synced["legacy"], synced["target"]
    with connect(legacy) as conn:
        comment = conn.execute(
            "delete from dispatch_comment where id = (select min(id) from dispatch_comment) "
            "returning *"
        ).fetchone()
        assert comment is not None
    gone = sync(legacy, target, "sync-comment-gone")
    marked = _marked_removed(target, "public.messages", "legacy_comment_id", comment[0])
    with connect(legacy) as conn:
        columns = sql.SQL(", ").join(sql.Placeholder() for _ in comment)
        conn.execute(sql.SQL("insert into dispatch_comment values ({})").format(columns), comment)
    back = sync(legacy, target, "sync-comment-back")
    assert (counts(target, gone.run_id)["plan_comments"][3], marked) == (1, True)
    assert _marked_removed(target, "public.messages", "legacy_comment_id", comment[0]) is False
    assert counts(target, back.run_id)["plan_comments"][3] == 0, "unmarking removes nothing"


def test_a_content_row_alone_in_its_bucket_deleted_is_forgotten_and_marked(synced) -> None:
    """The legacy side has no line for an emptied bucket: the stored side's line differs."""
    legacy, target = synced["legacy"], synced["target"]
    with connect(legacy) as conn:
        conn.execute(
            "insert into dispatch_office (id, doctor_id, name, tax_rate, valid) "
            "select 640000, doctor_id, 'Alone In Its Bucket', tax_rate, true "
            "from dispatch_office where id = (select min(id) from dispatch_office where valid)"
        )
    sync(legacy, target, "sync-lonely-office")
    with connect(legacy) as conn:
        conn.execute("delete from dispatch_office where id = 640000")
    after = sync(legacy, target, "sync-lonely-office-gone")
    with connect(target) as conn:
        hashes = scalar(
            conn,
            "select count(*) from migration.sync_row_hashes "
            "where source_table = 'dispatch_office' and legacy_id = 640000",
        )
    removed = _marked_removed(target, "public.offices", "legacy_office_id", 640000)
    assert (hashes, removed, counts(target, after.run_id)["offices"][3]) == (0, True, 1)


def test_a_target_migrated_before_the_dedup_memo_existed_gets_it_from_the_sync(synced) -> None:
    """A deployed target may only sync from now on: the sync's DDL creates the memo table."""
    legacy, target = synced["legacy"], synced["target"]
    with connect(target) as conn:
        conn.execute("drop table migration.dedup_inputs")
    run = sync(legacy, target, "sync-new-memo")
    with connect(target) as conn:
        memo_run = scalar(
            conn, "select run_id from migration.dedup_inputs where entity = 'profiles'"
        )
    assert memo_run == run.run_id, "no memo to reuse: the sync computed and remembered"


#: A second registration of a migrated patient arrives in the legacy database: the same
#: names and date of birth, registered by another doctor, with no sex recorded (one linkage
#: field fewer, so the migrated record stays the more complete survivor).
NEW_DUPLICATE = (
    "insert into auth_user (id, password, is_superuser, username, first_name, last_name, "
    "email, is_staff, is_active, date_joined) "
    "select (select max(id) + 1 from auth_user), 'pbkdf2_sha256$x', false, 'sync.duplicate', "
    "u.first_name, u.last_name, '', false, true, now() "
    "from auth_user as u where u.id = %(original)s",
    "insert into dispatch_patient (id, user_id, doctor_id, office_id, birthdate, sex, status, "
    "suffix, submitted_at, updated_at) "
    "select (select max(id) + 1 from dispatch_patient), (select max(id) from auth_user), "
    "%(doctor)s, null, p.birthdate, null, 1, 'SY02', now(), now() "
    "from dispatch_patient as p where p.user_id = %(original)s",
)


def test_a_new_patient_who_duplicates_a_migrated_one_is_linked_by_the_sync(synced, caplog) -> None:
    """The sync links a newly arrived duplicate to the existing survivor, with the model the
    full load estimated (issue 16: the nightly sync links new patients to existing clusters).
    """
    legacy, target = synced["legacy"], synced["target"]
    with connect(target) as conn:  # a migrated patient alone, with date of birth, sex, doctor
        original, doctor = conn.execute(
            "select p.legacy_user_id, p.legacy_doctor_user_id from public.profiles as p "
            "where p.profile_type = 'patient' and not p.is_test_account "
            "and p.merged_into is null and p.date_of_birth is not null "
            "and p.gender <> 'unknown' and p.legacy_doctor_user_id is not null "
            "and p.first_name is not null and p.last_name is not null and not exists "
            "(select 1 from public.profiles as d where d.merged_into = p.id) "
            "order by p.legacy_user_id limit 1"
        ).fetchone()
        other_doctor = scalar(
            conn,
            "select min(legacy_doctor_user_id) from public.profiles "
            "where legacy_doctor_user_id <> %s",
            (doctor,),
        )
        model_before = scalar(
            conn, "select model from migration.dedup_models where entity = 'profiles'"
        )
    with connect(legacy) as conn:
        for statement in NEW_DUPLICATE:
            conn.execute(statement, {"original": original, "doctor": other_doctor})
        new = scalar(conn, "select max(id) from auth_user")
    with caplog.at_level(logging.INFO, logger="migration_ops.dedup.step"):
        run = sync(legacy, target, "sync-new-duplicate")
    assert "[profiles] de-duplication (stored model)" in caplog.text
    with connect(target) as conn:
        members = conn.execute(
            "select legacy_id, survivor_legacy_id from migration.dedup_members "
            "where run_id = %s and legacy_id in (%s, %s) order by legacy_id",
            (run.run_id, original, new),
        ).fetchall()
        merged_into = scalar(
            conn,
            "select merged_into_legacy_user_id from public.profiles where legacy_user_id = %s",
            (new,),
        )
        link = conn.execute(
            "select legacy_id_l, legacy_id_r, linked_by, first_run_id from migration.dedup_links "
            "where entity = 'profiles' and legacy_id_r = %s",
            (new,),
        ).fetchall()
        model = conn.execute(
            "select model, trained_run_id from migration.dedup_models where entity = 'profiles'"
        ).fetchone()
        reconciled = conn.execute(
            "select source_rows, loaded_rows, merged_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s and entity = 'profiles'",
            (run.run_id,),
        ).fetchone()
    assert original == 4, "sandbox seed 11: the first migrated patient alone in its cluster"
    assert members == [(original, original), (new, original)]
    assert merged_into == original
    assert link == [(original, new, "model", run.run_id)]
    assert model == (model_before, "full-phase1"), "applied as the full load estimated it"
    assert reconciled == (1, 0, 1, 0), "the one new patient row counts as merged"
