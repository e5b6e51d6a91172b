"""Phase 4 end to end: sandbox legacy database → phases 1-2 → phase 4, on real PostgreSQL.

Phase 4 reads nothing phase 3 writes, so the data path runs it straight after phase 2 (the
step functions, like the DAG's data tasks, do not check the gate); the gate itself is proved
to refuse the out-of-order run first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import sql

from include.entities import get_phase
from migration_ops import local_env, runs
from migration_ops.db import connect, qualified
from migration_ops.errors import GateClosed
from migration_ops.local_storage import LocalStorageServer
from migration_ops.runs import RunContext
from tests.e2e.conftest import run_phase
from tests.e2e.fingerprint import assert_rerun_is_a_no_op

pytestmark = pytest.mark.e2e
PHASE_4 = get_phase(4)
PHASE_4_TABLES = (
    "public.order_states",
    "public.order_state_history",
    "public.workflow_categories",
    "public.workflow_templates",
    "public.workflow_template_predecessors",
    "public.workflow_tasks",
)


@dataclass(frozen=True)
class Migrated:
    legacy: str
    target: str
    run: RunContext


@pytest.fixture(scope="module")
def migrated(sandbox_dsn: str, pg_socket: str, supabase_storage: LocalStorageServer) -> Migrated:
    target = local_env.ensure_supabase_database(pg_socket, "e2e_phase4_target", recreate=True)
    run_phase(sandbox_dsn, target, get_phase(1), "p4-phase1")
    run_phase(sandbox_dsn, target, get_phase(2), "p4-phase2")
    with pytest.raises(GateClosed, match="phase 3 has never run"):
        runs.check_gate(target, PHASE_4)
    return Migrated(sandbox_dsn, target, run_phase(sandbox_dsn, target, PHASE_4, "p4-first"))


def _rows(dsn: str, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _quarantined(m: Migrated, entity: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for legacy_id, rule in _rows(
        m.target,
        "select legacy_id, rule from migration.quarantine where entity = %s and last_run_id = %s",
        (entity, m.run.run_id),
    ):
        found.setdefault(legacy_id, set()).add(rule)
    return found


def test_every_entity_reconciles_against_the_legacy_counts(migrated: Migrated) -> None:
    counts = {
        r[0]: r[1:]
        for r in _rows(
            migrated.target,
            "select entity, source_rows, loaded_rows, merged_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s",
            (migrated.run.run_id,),
        )
    }
    assert set(counts) == {e.name for e in PHASE_4.entities}
    for entity in PHASE_4.entities:
        source, loaded, merged, quarantined = counts[entity.name]
        table = sql.Identifier(entity.primary_source.table)
        legacy = _rows(migrated.legacy, sql.SQL("select count(*) from {}").format(table))[0][0]
        assert source == legacy == loaded + merged + quarantined, entity.name
        in_target = _rows(
            migrated.target,
            sql.SQL("select count(*) from {} where {} is not null").format(
                qualified(entity.target_table), sql.Identifier(entity.key)
            ),
        )[0][0]
        assert in_target == loaded, entity.name
    assert counts["workflow_tasks"][0] > 9_000, "the volume entity is the biggest"
    assert runs.latest_run_status(migrated.target, 4) == "validated"


def test_every_injected_workflow_defect_is_quarantined_or_reported(migrated: Migrated) -> None:
    defects = _rows(
        migrated.legacy,
        "select defect, legacy_id from sandbox.injected_defects "
        "where table_name in ('dispatch_state', 'dispatch_template_predecessors')",
    )
    states = _quarantined(migrated, "order_state_history")
    seen = Counter(defect for defect, _ in defects)
    assert set(seen) == {"state_no_instruction", "state_status_unknown", "template_cycle"}
    for defect, legacy_id in defects:
        if defect == "state_no_instruction":
            assert "order_state_history.instruction_present" in states[legacy_id]
        elif defect == "state_status_unknown":
            assert "order_state_history.status_known" in states[legacy_id]
        else:  # the edge closing the cycle: loaded, flagged, listed with its cycle
            ((in_cycle, members),) = _rows(
                migrated.target,
                "select in_cycle, cycle_template_ids from public.workflow_template_predecessors "
                "where legacy_predecessor_id = %s",
                (legacy_id,),
            )
            assert in_cycle and len(members) == 3
    cycle = _rows(
        migrated.target,
        "select legacy_template_id, legacy_predecessor_template_id, cycle_template_ids "
        "from public.workflow_template_predecessors where in_cycle",
    )
    # the closing edge makes a loop of three templates; with the course's skip edge between
    # them, every edge among the three lies on a cycle, and each lists the same three.
    members = {frozenset(m) for *_, m in cycle}
    assert len(members) == 1 and len(cycle) >= 3
    assert all({a, b} <= next(iter(members)) for a, b, _ in cycle)
    # the rest of the graph is loaded, and the validation output counts the cycle's edges
    assert _quarantined(migrated, "workflow_template_predecessors") == {}
    (results,) = _rows(
        migrated.target,
        "select results from migration.validation_results where run_id = %s "
        "and entity = 'workflow_template_predecessors' and pass = 'validated'",
        (migrated.run.run_id,),
    )[0]
    reported = next(r for r in results if r["rule"].endswith("cycle_edges_reported"))
    assert reported["success"] and reported["unexpected_count"] == len(cycle)


def test_state_history_and_tasks_keep_actor_time_and_flags(migrated: Migrated) -> None:
    legacy = {
        r[0]: r[1:]
        for r in _rows(
            migrated.legacy, 'select id, status, "on", changed_at, actor_id from dispatch_state'
        )
    }
    loaded = _rows(
        migrated.target,
        "select h.legacy_state_id, s.legacy_status, h.is_active, h.changed_at, h.legacy_actor_id "
        "from public.order_state_history h join public.order_states s on s.id = h.order_state_id",
    )
    assert loaded
    for state_id, *values in loaded:
        assert tuple(values) == legacy[state_id]
    mismatched = _rows(
        migrated.target,
        "select count(*) from public.workflow_tasks t left join public.profiles a on a.id = t.actor_id "
        "where a.legacy_user_id is distinct from t.legacy_actor_id and t.actor_id is not null",
    )
    assert mismatched == [(0,)]


def test_audit_trail_per_order_matches_the_legacy_events(migrated: Migrated) -> None:
    (instruction_id,) = _rows(
        migrated.legacy,
        "select s.instruction_id from dispatch_state s where s.status in (11, 12) "
        "and exists (select 1 from dispatch_task t where t.instruction_id = s.instruction_id "
        "and t.checked and t.done_at is not null) "
        "group by s.instruction_id order by count(*) desc, s.instruction_id limit 1",
    )[0]
    expected = sorted(
        _rows(
            migrated.legacy,
            "select changed_at, 'dispatch_state', id from dispatch_state "
            "where instruction_id = %(i)s and status in (11, 12) "
            "union all select done_at, 'dispatch_task', id from dispatch_task "
            "where instruction_id = %(i)s and checked and done_at is not null",
            {"i": instruction_id},
        )
    )
    trail = _rows(
        migrated.target,
        "select a.occurred_at, a.legacy_table, a.legacy_id from public.order_audit_trail a "
        "join public.orders o on o.id = a.order_id where o.legacy_instruction_id = %s "
        "order by 1, 2, 3",
        (instruction_id,),
    )
    assert trail == expected and any(t == "dispatch_state" for _, t, _ in trail)


def test_rerun_changes_nothing_and_adds_no_quarantine_duplicates(migrated: Migrated) -> None:
    assert_rerun_is_a_no_op(migrated.legacy, migrated.target, PHASE_4, "p4-second", PHASE_4_TABLES)
