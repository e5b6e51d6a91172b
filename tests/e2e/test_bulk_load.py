"""The bulk path of the first load (issue 20): the same target as the upsert, all or nothing.

Two Supabase-shaped targets are loaded from the same sandbox, phases 1-4: one by the upsert
only, one the way a run loads by default (an empty table takes the bulk path). In the second,
phase 4 is run step by step so that the first load of ``workflow_tasks`` (five foreign keys)
can be killed inside its transaction and, once, broken by rows whose order does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import sql

from include.entities import get_phase
from include.entities.spec import EntitySpec
from migration_ops import local_env, pipeline, runs
from migration_ops.db import connect, qualified, scalar
from migration_ops.errors import MigrationError
from migration_ops.local_storage import LocalStorageServer
from migration_ops.runs import RunContext
from tests.e2e.conftest import run_phase
from tests.e2e.kill_harness import comparable, kill_load_at_its_checkpoint

pytestmark = pytest.mark.e2e
PHASES = [get_phase(n) for n in (1, 2, 3, 4)]
TASKS = "workflow_tasks"
#: The two tasks whose order the test replaces by one that does not exist.
BROKEN_TASKS = 2


def catalog(dsn: str, table: str) -> dict[str, Any]:
    """Indexes, constraints (and whether validated), comments, grants, RLS and policies."""
    with connect(dsn) as conn:
        return {
            "constraints": conn.execute(
                "select conname, contype, pg_get_constraintdef(oid), convalidated, "
                "obj_description(oid, 'pg_constraint') from pg_constraint "
                "where conrelid = %s::regclass order by 1",
                (table,),
            ).fetchall(),
            "indexes": conn.execute(
                "select indexrelid::regclass::text, pg_get_indexdef(indexrelid), "
                "obj_description(indexrelid, 'pg_class') from pg_index "
                "where indrelid = %s::regclass order by 1",
                (table,),
            ).fetchall(),
            "table": conn.execute(
                "select relacl::text, relrowsecurity, relforcerowsecurity, "
                "obj_description(oid, 'pg_class') from pg_class where oid = %s::regclass",
                (table,),
            ).fetchall(),
            "policies": conn.execute(
                "select policyname, cmd, roles::text, qual, with_check from pg_policies "
                "where schemaname || '.' || tablename = %s order by 1",
                (table,),
            ).fetchall(),
        }


@dataclass(frozen=True)
class Loaded:
    legacy: str
    upsert: str
    bulk: str
    bulk_run: RunContext
    load_outputs: dict[str, dict[str, int]]
    rows_after_kill: int
    catalog_after_kill: dict[str, Any]
    broken_ids: list[int]
    broken_error: str
    rows_after_broken_load: int


def _break_orders(dsn: str, entity: EntitySpec) -> tuple[list[int], list[Any]]:
    """Point two validated tasks at an order that does not exist; return ids and old values."""
    validated = qualified(entity.staging_table("validated"))
    with connect(dsn) as conn:
        rows = conn.execute(
            sql.SQL("select legacy_task_id, order_id from {} order by 1 limit %s").format(
                validated
            ),
            (BROKEN_TASKS,),
        ).fetchall()
        conn.execute(
            sql.SQL(
                "update {} set order_id = gen_random_uuid() where legacy_task_id = any(%s)"
            ).format(validated),
            ([r[0] for r in rows],),
        )
    return [r[0] for r in rows], [r[1] for r in rows]


def _restore_orders(dsn: str, entity: EntitySpec, ids: list[int], orders: list[Any]) -> None:
    with connect(dsn) as conn:
        for legacy_id, order in zip(ids, orders, strict=True):
            conn.execute(
                sql.SQL("update {} set order_id = %s where legacy_task_id = %s").format(
                    qualified(entity.staging_table("validated"))
                ),
                (order, legacy_id),
            )


def _count(dsn: str, table: str) -> int:
    with connect(dsn) as conn:
        return int(scalar(conn, sql.SQL("select count(*) from {}").format(qualified(table))))


def _phase_4_killed_and_broken_once(legacy: str, target: str) -> dict[str, Any]:
    """Phase 4 step by step; the first load of the tasks is killed, then broken, then run."""
    phase = PHASES[3]
    runs.apply_schema(target, phase)
    run = runs.begin_run(target, phase, "bulk-4", triggered_by="pytest", params={})
    pipeline.extract_step(legacy, target, run, phase.ordered())
    found: dict[str, Any] = {"bulk_run": run, "load_outputs": {}}
    for entity in phase.ordered():
        pipeline.transform_step(target, run, entity)
        pipeline.validate_step(target, run, entity, limit=pipeline.QuarantineLimit())
        if entity.name == TASKS:
            killed = kill_load_at_its_checkpoint(
                target, run.run_id, TASKS, lambda e=entity: pipeline.load_step(target, run, e)
            )
            assert killed is not None, "the load was killed inside its transaction"
            found["rows_after_kill"] = _count(target, entity.target_table)
            found["catalog_after_kill"] = catalog(target, entity.target_table)
            ids, orders = _break_orders(target, entity)
            with pytest.raises(MigrationError) as broken:
                pipeline.load_step(target, run, entity)
            found["broken_ids"], found["broken_error"] = ids, str(broken.value)
            found["rows_after_broken_load"] = _count(target, entity.target_table)
            _restore_orders(target, entity, ids, orders)
        found["load_outputs"][entity.name] = pipeline.load_step(target, run, entity)
        pipeline.verify_step(target, run, entity)
        pipeline.checkpoint_step(target, run, entity)
    runs.finish_run(target, run, phase)
    return found


@pytest.fixture(scope="module")
def loaded(sandbox_dsn: str, pg_socket: str, supabase_storage: LocalStorageServer) -> Loaded:
    upsert = local_env.ensure_supabase_database(pg_socket, "e2e_upsert_target", recreate=True)
    for phase in PHASES:
        run_phase(sandbox_dsn, upsert, phase, f"upsert-{phase.number}", load_path="upsert")
    bulk = local_env.ensure_supabase_database(pg_socket, "e2e_bulk_target", recreate=True)
    for phase in PHASES[:3]:
        run_phase(sandbox_dsn, bulk, phase, f"bulk-{phase.number}")
    return Loaded(
        legacy=sandbox_dsn,
        upsert=upsert,
        bulk=bulk,
        **_phase_4_killed_and_broken_once(sandbox_dsn, bulk),
    )


def test_the_bulk_path_and_the_upsert_give_the_same_target(loaded: Loaded) -> None:
    assert comparable(loaded.bulk, 4) == comparable(loaded.upsert, 4)
    for phase in PHASES:
        for entity in phase.entities:
            assert catalog(loaded.bulk, entity.target_table) == catalog(
                loaded.upsert, entity.target_table
            ), f"{entity.target_table}: indexes, keys, comments, grants and policies as the DDL"


def test_every_first_load_of_phase_4_took_the_bulk_path(loaded: Loaded) -> None:
    for name, output in loaded.load_outputs.items():
        assert output["bulk_path"] == 1, name
        assert output["updated_rows"] == 0 and output["unchanged_rows"] == 0, name
    tasks = loaded.load_outputs[TASKS]
    assert set(tasks["bulk_seconds"]) == {
        "insert",
        "keys_and_indexes",
        "foreign_keys",
        "analyze",
    }, "the bulk path's seconds per part, for the task log and make bench"
    assert tasks["inserted_rows"] == _count(loaded.bulk, "public.workflow_tasks")
    assert tasks["inserted_rows"] == _count(loaded.upsert, "public.workflow_tasks")


#: Per workflow_tasks row: its key's statement prefix (the first 24 hex digits, 28 characters
#: with the dashes), its counter (the last 32 bits), and whether it is an RFC 9562 version-7
#: uuid (version digit 7, variant 10) stamped between the run's start and now.
KEY_SHAPE = """
select count(*), count(distinct id), count(distinct left(id::text, 28)),
    min(('x' || right(id::text, 8))::bit(32)::bigint),
    max(('x' || right(id::text, 8))::bit(32)::bigint),
    count(*) filter (
        where uuid_extract_version(id) = 7 and substr(id::text, 20, 1) in ('8', '9', 'a', 'b')
            and uuid_extract_timestamp(id) between date_trunc('milliseconds', %s::timestamptz)
                and now()
    )
from public.workflow_tasks
"""


def test_the_bulk_path_keys_its_rows_with_one_random_draw_per_statement(loaded: Loaded) -> None:
    """uuidv7 keys: one statement prefix (drawn once), the rows numbered 1..n after it.

    The upsert's rows take ``migration.new_id()`` (one draw per row); both are version 7.
    """
    rows = _count(loaded.bulk, "public.workflow_tasks")
    with connect(loaded.bulk) as conn:
        started = scalar(
            conn,
            "select started_at from migration.runs where run_id = %s",
            (loaded.bulk_run.run_id,),
        )
        assert conn.execute(KEY_SHAPE, (started,)).fetchone() == (rows, rows, 1, 1, rows, rows)
    with connect(loaded.upsert) as conn:
        count, distinct, prefixes, _, _, version_7 = conn.execute(
            KEY_SHAPE, ("-infinity",)
        ).fetchone()
    assert (count, distinct, prefixes, version_7) == (rows, rows, rows, rows)


def test_a_kill_inside_the_bulk_transaction_leaves_the_table_as_it_was(loaded: Loaded) -> None:
    assert loaded.rows_after_kill == 0
    assert loaded.catalog_after_kill == catalog(loaded.upsert, "public.workflow_tasks")


def test_a_foreign_key_broken_in_the_bulk_path_is_reported_per_row(loaded: Loaded) -> None:
    error = loaded.broken_error
    assert error.startswith(
        f"[{TASKS}] rule load.foreign_key: foreign key workflow_tasks_order_id_fkey"
    )
    assert f"{BROKEN_TASKS} validated rows (all) have no referenced row" in error
    assert f"legacy_task_id {sorted(loaded.broken_ids)};" in error
    assert loaded.rows_after_broken_load == 0, "nothing was loaded"


def test_the_upsert_reports_a_broken_foreign_key_the_same_way(loaded: Loaded) -> None:
    """A rerun (the upsert path) whose two changed tasks point at a missing order."""
    phase, target = PHASES[3], loaded.bulk
    entity = next(e for e in phase.entities if e.name == TASKS)
    run = runs.begin_run(target, phase, "upsert-broken", triggered_by="pytest", params={})
    pipeline.extract_step(loaded.legacy, target, run, [entity])
    pipeline.transform_step(target, run, entity)
    pipeline.validate_step(target, run, entity, limit=pipeline.QuarantineLimit())
    ids, _ = _break_orders(target, entity)
    with connect(target) as conn:  # as validate would have found them: changed rows
        conn.execute(
            sql.SQL("insert into {} select * from {} where legacy_task_id = any(%s)").format(
                qualified(entity.staging_table("changed")),
                qualified(entity.staging_table("validated")),
            ),
            (ids,),
        )
    before = comparable(target, 4)
    with pytest.raises(MigrationError) as broken:
        pipeline.load_step(target, run, entity, path="upsert")
    assert str(broken.value).startswith(
        f"[{TASKS}] rule load.foreign_key: foreign key workflow_tasks_order_id_fkey"
    )
    assert f"legacy_task_id {sorted(ids)};" in str(broken.value)
    assert comparable(target, 4) == before
    with pytest.raises(MigrationError, match="entities not reconciled"):
        runs.finish_run(target, run, phase)  # the broken run ends failed


def test_a_bulk_load_asked_for_on_a_loaded_table_writes_only_what_differs(loaded: Loaded) -> None:
    """``load_path=bulk`` on a table that holds rows: the changed rows updated, nothing else."""
    phase, target = PHASES[3], loaded.bulk
    entity = next(e for e in phase.entities if e.name == "workflow_templates")
    with connect(target) as conn:  # a hand edit the next load must undo
        edited = conn.execute(
            "update public.workflow_templates set task_name = 'edited by hand' "
            "where legacy_template_id = (select min(legacy_template_id) "
            "from public.workflow_templates) returning legacy_template_id"
        ).fetchone()
    assert edited is not None
    run = runs.begin_run(target, phase, "bulk-requested", triggered_by="pytest", params={})
    pipeline.extract_step(loaded.legacy, target, run, [entity])
    pipeline.transform_step(target, run, entity)
    pipeline.validate_step(target, run, entity, limit=pipeline.QuarantineLimit())
    output = pipeline.load_step(target, run, entity, path="bulk")
    assert (output["bulk_path"], output["inserted_rows"], output["updated_rows"]) == (1, 0, 1)
    pipeline.verify_step(target, run, entity)
    pipeline.checkpoint_step(target, run, entity)
    assert comparable(target, 4)[entity.name] == comparable(loaded.upsert, 4)[entity.name]
    assert catalog(target, entity.target_table) == catalog(loaded.upsert, entity.target_table)
    with pytest.raises(MigrationError, match="entities not reconciled"):
        runs.finish_run(target, run, phase)  # one entity of the phase only


def test_a_published_table_keeps_its_primary_key_through_the_bulk_path(loaded: Loaded) -> None:
    """Supabase Realtime publishes tables: their updates need the key as replica identity."""
    from migration_ops.bulk_load import deferred_objects

    entity = next(e for e in PHASES[3].entities if e.name == TASKS)
    with connect(loaded.bulk) as conn:
        before = {item.name for item in deferred_objects(conn, entity)}
        conn.execute("create publication bulk_test_realtime for table public.workflow_tasks")
        published = {item.name for item in deferred_objects(conn, entity)}
        conn.rollback()
    assert "workflow_tasks_pkey" in before
    assert before - published == {"workflow_tasks_pkey"}
