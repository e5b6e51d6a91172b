"""Phase 5 end to end: phases 1-4 migrated, then phase 5 with the hashing provider, on a
Supabase-shaped target as the non-superuser role: queue, vectors, triggers, search, RLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from include.entities import get_phase
from migration_ops import local_env, runs
from migration_ops.ai import embed_queue as queue
from migration_ops.ai import search
from migration_ops.ai.providers import HashingProvider
from migration_ops.db import connect
from migration_ops.local_storage import LocalStorageServer
from migration_ops.runs import RunContext
from tests.e2e.conftest import run_phase

pytestmark = pytest.mark.e2e
PHASE_5 = get_phase(5)
PARENTS = {
    "profiles": "public.profiles",
    "orders": "public.orders",
    "messages": "public.messages",
    "projects": "public.projects",
}


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
        statuses = dict(
            _rows(
                migrated.target,
                "select status, count(*) from migration.embedding_queue where entity = %s group by 1",
                (entity,),
            )
        )
        assert statuses == {"done": in_target}, entity
        with_text = _one(
            migrated.target,
            f"select count(*) from {parent} as p where migration.embedding_text(p) is not null",
        )
        vectors = PHASE_5_VECTORS[entity]
        embedded = _one(migrated.target, f"select count(distinct row_id) from {vectors}")
        assert embedded == with_text, entity


PHASE_5_VECTORS = {
    e.embedding.queue_entity: e.embedding.vectors_table for e in PHASE_5.entities if e.embedding
}


def test_a_rerun_queues_and_embeds_nothing(migrated: Migrated) -> None:
    run = run_phase(migrated.legacy, migrated.target, PHASE_5, "p5-rerun")
    loaded = _rows(
        migrated.target,
        "select entity, inserted_rows, updated_rows from migration.checkpoints "
        "where run_id = %s order by entity",
        (run.run_id,),
    )
    assert loaded == [(f"embed_{e}", 0, 0) for e in sorted(PARENTS)]
    assert (
        _one(
            migrated.target,
            "select count(*) from migration.embedding_queue where updated_at > "
            "(select started_at from migration.runs where run_id = %s)",
            (run.run_id,),
        )
        == 0
    )


def _message(target: str, legacy_record_id: int) -> tuple[Any, str]:
    return _rows(
        target,
        "select id, content from public.messages where legacy_record_id = %s",
        (legacy_record_id,),
    )[0]


def test_a_changed_text_is_requeued_by_the_trigger_and_chunked(migrated: Migrated) -> None:
    from migration_ops.ai import text as texts

    row_id, _ = _message(migrated.target, 7)
    long_text = " ".join(f"aligner{n} stage{n % 13}" for n in range(400))  # 7,179 characters
    with connect(migrated.target) as conn:
        conn.execute("update public.messages set content = %s where id = %s", (long_text, row_id))
    queued = _rows(
        migrated.target,
        "select status, content_hash, attempts from migration.embedding_queue "
        "where entity = 'messages' and row_id = %s",
        (row_id,),
    )
    assert queued == [("pending", texts.content_hash(long_text), 0)]
    assert (
        _one(
            migrated.target,
            "select count(*) from migration.embedding_queue where status = 'pending'",
        )
        == 1
    ), "only the changed row"
    stats = queue.process_queue(migrated.target, EMBEDDINGS["messages"], HashingProvider())
    assert (stats.embedded_rows, stats.chunks, stats.batches) == (1, 5, 1)
    assert [len(c) for c in texts.chunks(long_text)] == [1995, 1993, 1997, 1994, 799]
    assert _rows(
        migrated.target,
        "select chunk_no from public.message_embeddings where row_id = %s order by 1",
        (row_id,),
    ) == [(0,), (1,), (2,), (3,), (4,)]


def _unique_message(target: str) -> tuple[int, str]:
    """The first message whose text no other message has (the sandbox repeats templates)."""
    return _rows(
        target,
        "select min(legacy_record_id), content from public.messages where content is not null "
        "and legacy_record_id is not null group by content having count(*) = 1 order by 1 limit 1",
    )[0]


def test_search_finds_the_message_and_uses_the_hnsw_index(migrated: Migrated) -> None:
    legacy_id, content = _unique_message(migrated.target)
    hits = search.search(migrated.target, "messages", content, HashingProvider(), k=5)
    assert len(hits) == 5
    assert hits[0].legacy_id == legacy_id and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert all(h.similarity < 0.999 for h in hits[1:]), "one exact match only"
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    with connect(migrated.target) as conn:
        queue.use_vector(conn)
        conn.execute("set local enable_seqscan = off")  # a tiny table: force the planner's hand
        vector = queue.vector_literal(HashingProvider().embed([content])[0])
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain select row_id from public.message_embeddings "
                "order by embedding <=> %s::vector(1024) limit 5",
                (vector,),
            ).fetchall()
        )
    assert "Index Scan using message_embeddings_hnsw on message_embeddings" in plan


def test_match_function_respects_rls(migrated: Migrated) -> None:
    _, content = _unique_message(migrated.target)
    vector = queue.vector_literal(HashingProvider().embed([content])[0])
    counted = {}
    for role in ("authenticated", "service_role"):
        with connect(migrated.target) as conn:
            queue.use_vector(conn)
            conn.execute(f"set local role {role}")
            counted[role] = conn.execute(
                "select count(*) from public.match_messages(%s::vector(1024), 0.0, 5)", (vector,)
            ).fetchone()[0]
    assert counted == {"authenticated": 0, "service_role": 5}


def test_a_throttled_row_is_dead_lettered_after_three_attempts(
    migrated: Migrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_ops.ai.providers import BedrockTitanProvider
    from migration_ops.local_bedrock import LocalBedrockServer

    row_id, _ = _message(migrated.target, 9)
    with connect(migrated.target) as conn:
        conn.execute(
            "update public.messages set content = 'THROTTLE-ME please' where id = %s", (row_id,)
        )
    with LocalBedrockServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_BEDROCK", server.connection())
        server.throttle(marker="THROTTLE-ME")
        stats = queue.process_queue(
            migrated.target,
            EMBEDDINGS["messages"],
            BedrockTitanProvider.from_connection(),
            backoff_seconds=0.05,
        )
    assert server.calls == {"throttled": 9}, "3 queue attempts x 3 botocore calls"
    assert (stats.failed_attempts, stats.dead_rows, stats.embedded_rows) == (3, 1, 0)
    assert _rows(
        migrated.target,
        "select status, attempts, last_error_class from migration.embedding_queue "
        "where entity = 'messages' and row_id = %s",
        (row_id,),
    ) == [("dead", 3, "ThrottlingException")]


EMBEDDINGS = {e.embedding.queue_entity: e.embedding for e in PHASE_5.entities if e.embedding}


KILLED_WORKER = """
import sys, time
from include.entities import get_phase
from migration_ops.ai import embed_queue as queue
from migration_ops.ai.providers import HashingProvider

class Slow(HashingProvider):
    def embed(self, texts):
        time.sleep(0.01 * len(texts))
        return super().embed(texts)

spec = {e.name: e.embedding for e in get_phase(5).entities}["embed_messages"]
queue.process_queue(sys.argv[1], spec, Slow(), batch_size=40, workers=2)
"""


def _vector_counts(target: str) -> tuple[int, int, int]:
    """(vector rows, vector rows of done queue rows, vector rows of pending queue rows)."""
    return _rows(
        target,
        "select count(*), count(*) filter (where q.status = 'done'), "
        "count(*) filter (where q.status = 'pending') from public.message_embeddings as v "
        "join migration.embedding_queue as q on q.entity = 'messages' and q.row_id = v.row_id",
    )[0]


def _expected_chunks(target: str, status: str | None = None) -> int:
    from migration_ops.ai import text as texts

    rows = _rows(
        target,
        "select migration.embedding_text(m) from public.messages as m "
        "join migration.embedding_queue as q on q.entity = 'messages' and q.row_id = m.id "
        "where %s::text is null or q.status = %s",
        (status, status),
    )
    return sum(len(texts.chunks(text)) for (text,) in rows)


def test_a_killed_queue_worker_loses_and_duplicates_nothing(migrated: Migrated) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    with connect(migrated.target) as conn:
        conn.execute("delete from public.message_embeddings")
        conn.execute(
            "update migration.embedding_queue set status = 'pending', attempts = 0, "
            "next_attempt_at = now(), embedded_hash = null where entity = 'messages'"
        )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, migrated.target], env=env)
    done = 0
    deadline = time.monotonic() + 60
    while done < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
        done = _one(
            migrated.target,
            "select count(*) from migration.embedding_queue "
            "where entity = 'messages' and status = 'done'",
        )
    time.sleep(0.2)  # inside a later batch
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    done = _one(
        migrated.target,
        "select count(*) from migration.embedding_queue "
        "where entity = 'messages' and status = 'done'",
    )
    assert done % 40 == 0 and 80 <= done < 855, "whole batches only"
    total, of_done, of_pending = _vector_counts(migrated.target)
    assert of_pending == 0 and total == of_done == _expected_chunks(migrated.target, "done")

    stats = queue.process_queue(migrated.target, EMBEDDINGS["messages"], HashingProvider())
    assert stats.embedded_rows == 855 - done and stats.dead_rows == 0
    assert _rows(
        migrated.target,
        "select status, count(*) from migration.embedding_queue "
        "where entity = 'messages' group by 1",
    ) == [("done", 855)]
    total, of_done, _ = _vector_counts(migrated.target)
    assert total == of_done == _expected_chunks(migrated.target) == 859
    assert (
        _one(migrated.target, "select count(distinct row_id) from public.message_embeddings") == 855
    )


def test_dify_documents_follow_the_rows(migrated: Migrated) -> None:
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import DifyKnowledgeClient, KnowledgeSettings
    from migration_ops.local_dify import LocalDifyServer

    spec = EMBEDDINGS["profiles"]
    profiles = _one(migrated.target, "select count(*) from public.profiles")
    with LocalDifyServer(polls_to_complete=1) as server:
        client = DifyKnowledgeClient(server.url, "dataset-local-key", sleep=lambda _: None)
        first = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
        assert (first.created, first.updated, first.deleted, first.indexed) == (
            profiles,
            0,
            0,
            profiles,
        )
        posts = server.state.requests["POST"]
        again = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
        assert vars(again) == {
            "created": 0,
            "updated": 0,
            "deleted": 0,
            "indexed": 0,
            "indexing_errors": 0,
        }
        assert server.state.requests["POST"] == posts, "a rerun creates nothing"

        row_id, legacy_user_id = _rows(
            migrated.target,
            "select id, legacy_user_id from public.profiles order by legacy_user_id limit 1",
        )[0]
        with connect(migrated.target) as conn:
            conn.execute(
                "update public.profiles set first_name = 'Renamed' where id = %s", (row_id,)
            )
            conn.execute(
                "insert into public.profiles (legacy_user_id, username, first_name) "
                "values (990001, 'app.user', 'Transient')"
            )
        changed = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
        assert (changed.created, changed.updated, changed.deleted) == (1, 1, 0)
        document = _one(
            migrated.target,
            "select document_id from migration.dify_documents "
            "where entity = 'profiles' and legacy_id = %s",
            (legacy_user_id,),
        )
        assert "Renamed" in server.state.documents[document]["text"]
        with connect(migrated.target) as conn:
            conn.execute("delete from public.profiles where legacy_user_id = 990001")
        removed = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
        assert (removed.created, removed.updated, removed.deleted) == (0, 0, 1)
        assert len(server.state.documents) == profiles
        assert _one(migrated.target, "select count(*) from migration.dify_documents") == profiles
        assert server.violations == []


def test_phase_5_rollback_clears_exactly_what_it_made(
    migrated: Migrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_ops import rollback
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import DifyKnowledgeClient, KnowledgeSettings
    from migration_ops.local_dify import LocalDifyServer
    from tests.e2e.fingerprint import fingerprints

    vectors = set(PHASE_5_VECTORS.values())
    with LocalDifyServer(polls_to_complete=1) as server:
        client = DifyKnowledgeClient(server.url, "dataset-local-key", sleep=lambda _: None)
        synced = dify_sync.sync_entity(
            migrated.target, EMBEDDINGS["projects"], client, KnowledgeSettings()
        )
        assert synced.created == 670
        monkeypatch.setenv("AIRFLOW_CONN_DIFY_KNOWLEDGE", server.connection())
        before = {t: f for t, f in fingerprints(migrated.target).items() if t not in vectors}
        result = rollback.roll_back(migrated.target, 5, mode="delete", actor="pytest", confirm="5")
        assert server.state.documents == {}, "every Dify document of phase 5 deleted"
    after = fingerprints(migrated.target)
    assert {t: f for t, f in after.items() if t not in vectors} == before
    assert all(after[t][0] == 0 for t in vectors)
    assert result["deleted"] == {
        "embed_projects": 670,
        "embed_messages": 855,
        "embed_orders": 250,
        "embed_profiles": 102,
    }
    assert _one(migrated.target, "select count(*) from migration.embedding_queue") == 0
    assert _one(migrated.target, "select count(*) from migration.dify_documents") == 0
    assert _rows(
        migrated.target,
        "select distinct tgenabled from pg_trigger where tgname like 'embedding_enqueue_%'",
    ) == [("D",)]
    assert runs.latest_run_status(migrated.target, 5) == "rolled_back"
