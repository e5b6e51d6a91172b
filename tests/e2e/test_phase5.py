"""Phase 5 end to end: phases 1-4 migrated, then phase 5 with the hashing provider, on a
Supabase-shaped target as the non-superuser role: queue, vectors, triggers, search, RLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from include.entities import get_phase
from migration_ops import local_env, runs
from migration_ops.ai import queue, search
from migration_ops.ai.providers import HashingProvider
from migration_ops.db import connect
from migration_ops.local_storage import LocalStorageServer
from migration_ops.runs import RunContext
from tests.e2e.conftest import run_phase

pytestmark = pytest.mark.e2e
PHASE_5 = get_phase(5)
PARENTS = {"profiles": "public.profiles", "orders": "public.orders",
           "messages": "public.messages", "projects": "public.projects"}


@dataclass(frozen=True)
class Migrated:
    legacy: str
    target: str
    run: RunContext


@pytest.fixture(scope="module")
def migrated(sandbox_dsn: str, pg_socket: str, supabase_storage: LocalStorageServer) -> Migrated:
    target = local_env.ensure_supabase_database(pg_socket, "e2e_phase5_target", recreate=True)
    for number in (1, 2, 3, 4):
        run_phase(sandbox_dsn, target, get_phase(number), f"p5-phase{number}")
    return Migrated(sandbox_dsn, target, run_phase(sandbox_dsn, target, PHASE_5, "p5-first"))


def _rows(dsn: str, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _one(dsn: str, query: Any, params: Any = None) -> Any:
    return _rows(dsn, query, params)[0][0]


def test_every_target_row_is_queued_and_embedded_once(migrated: Migrated) -> None:
    recon = {
        r[0]: r[1:]
        for r in _rows(
            migrated.target,
            "select entity, source_rows, loaded_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s",
            (migrated.run.run_id,),
        )
    }
    assert runs.latest_run_status(migrated.target, 5) == "validated"
    for entity, parent in PARENTS.items():
        in_target = _one(migrated.target, f"select count(*) from {parent}")
        assert recon[f"embed_{entity}"] == (in_target, in_target, 0), entity
        statuses = dict(_rows(
            migrated.target,
            "select status, count(*) from migration.embedding_queue where entity = %s group by 1",
            (entity,),
        ))
        assert statuses == {"done": in_target}, entity
        with_text = _one(
            migrated.target,
            f"select count(*) from {parent} as p where migration.embedding_text(p) is not null",
        )
        vectors = PHASE_5_VECTORS[entity]
        embedded = _one(migrated.target, f"select count(distinct row_id) from {vectors}")
        assert embedded == with_text, entity


PHASE_5_VECTORS = {e.embedding.queue_entity: e.embedding.vectors_table
                   for e in PHASE_5.entities if e.embedding}
