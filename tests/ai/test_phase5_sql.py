"""Phase 5's SQL rules on a small Supabase-shaped target (non-superuser role): the enqueue
triggers, the queue's content-hash skip, backoff and dead letters, and match_messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from include.entities import PHASES, get_entity
from migration_ops import runs
from migration_ops.ai import embed_queue
from migration_ops.ai.providers import HashingProvider
from migration_ops.db import connect, run_sql_file

MESSAGES = get_entity("embed_messages").embedding
TEXTS = ("rescan the upper left molar", "intrude the upper incisors", "invoice paid by card")


class Recording(HashingProvider):
    """The hashing provider, counting calls; texts holding ``FAIL`` raise a TimeoutError."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        self.calls += len(texts)
        if any("FAIL" in t for t in texts):
            raise TimeoutError("scripted")
        return super().embed(texts)


@pytest.fixture
def target(supabase_db: Callable[[str], str]) -> str:
    dsn = supabase_db("ai")
    for phase in PHASES:
        runs.apply_schema(dsn, phase)
    with connect(dsn) as conn:
        conn.execute(
            "insert into public.profiles (legacy_user_id, username) values (1, 'patient.one')"
        )
        conn.execute(
            "insert into public.messages (legacy_record_id, message_type_id, content, sent_at, "
            "patient_id) select n, (select id from public.message_types where code = 'general'), "
            "t, now(), (select id from public.profiles) "
            "from unnest(%s::text[]) with ordinality as u (t, n)",
            (list(TEXTS),),
        )
    return dsn


def _all(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _queue(dsn: str) -> list[tuple[Any, ...]]:
    return _all(
        dsn,
        "select q.source_key, q.status, q.attempts, q.last_error_class from "
        "migration.embedding_queue as q where entity = 'messages' order by 1",
    )


def _enable(dsn: str) -> None:
    with connect(dsn) as conn:
        run_sql_file(conn, "ai/enable_embedding_triggers.sql")


def test_triggers_are_off_until_phase_5_then_follow_text_changes_only(target: str) -> None:
    assert _queue(target) == [], "created disabled: phases 1-4 loads enqueue nothing"
    _enqueue_all(target)  # what phase 5's load does, then everything embedded
    with connect(target) as conn:
        conn.execute(
            "update migration.embedding_queue set status = 'done', embedded_hash = content_hash"
        )
    _enable(target)
    with connect(target) as conn:
        conn.execute(
            "update public.messages set content = content || '!' where legacy_record_id = 1"
        )
        conn.execute("update public.messages set is_public = true")  # not embeddable text
    assert [r for r in _queue(target) if r[1] == "pending"] == [(1, "pending", 0, None)]
    with connect(target) as conn:
        conn.execute(
            "insert into public.messages (legacy_record_id, message_type_id, content, sent_at, "
            "patient_id) select 4, message_type_id, 'new', now(), patient_id "
            "from public.messages where legacy_record_id = 1"
        )
    assert [r[0] for r in _queue(target)] == [1, 2, 3, 4]
    with connect(target) as conn:
        conn.execute("delete from public.messages where legacy_record_id = 4")
    assert [r[0] for r in _queue(target)] == [1, 2, 3]


def _enqueue_all(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute(
            "insert into migration.embedding_queue (entity, row_id, source_key, content_hash) "
            "select 'messages', id, legacy_record_id, md5(content) from public.messages"
        )


def test_unchanged_text_is_not_embedded_again(target: str) -> None:
    _enqueue_all(target)
    provider = Recording()
    first = embed_queue.process_queue(target, MESSAGES, provider)
    assert (first.embedded_rows, first.chunks, provider.calls) == (3, 3, 3)
    with connect(target) as conn:
        conn.execute("update migration.embedding_queue set status = 'pending'")
    again = embed_queue.process_queue(target, MESSAGES, provider)
    assert (again.embedded_rows, again.unchanged_rows, provider.calls) == (0, 3, 3)
    assert _all(target, "select count(*) from public.message_embeddings") == [(3,)]


def test_failures_back_off_and_are_dead_lettered_after_three_attempts(target: str) -> None:
    with connect(target) as conn:
        conn.execute(
            "update public.messages set content = 'FAIL ' || content where legacy_record_id = 2"
        )
    _enqueue_all(target)
    provider = Recording()
    stats = embed_queue.process_queue(target, MESSAGES, provider, backoff_seconds=0.05)
    assert (stats.embedded_rows, stats.failed_attempts, stats.dead_rows) == (2, 3, 1)
    assert _queue(target) == [
        (1, "done", 0, None),
        (2, "dead", 3, "TimeoutError"),
        (3, "done", 0, None),
    ]
    assert provider.calls == 2 + 3


def test_match_messages_ranks_the_neighbours_and_honours_the_threshold(target: str) -> None:
    _enqueue_all(target)
    embed_queue.process_queue(target, MESSAGES, HashingProvider())
    query = embed_queue.vector_literal(HashingProvider().embed(["rescan the upper molar"])[0])
    with connect(target) as conn:
        embed_queue.use_vector(conn)
        ranked = conn.execute(
            "select legacy_id from public.match_messages(%s::vector(1024), 0.0, 3)", (query,)
        ).fetchall()
        close = conn.execute(
            "select legacy_id from public.match_messages(%s::vector(1024), 0.5, 3)", (query,)
        ).fetchall()
    assert ranked[:2] == [(1,), (2,)]
    assert close == [(1,)]


def test_a_provider_change_requeues_and_search_keeps_the_models_apart(target: str) -> None:
    from migration_ops.ai import search

    old, new = HashingProvider(), HashingProvider(model_id="hash:blake2b-v1-alt:1024")
    _enqueue_all(target)
    embed_queue.process_queue(target, MESSAGES, old)
    assert [h.legacy_id for h in search.search(target, "messages", TEXTS[0], old, k=3)] == [1, 2]
    assert search.search(target, "messages", TEXTS[0], new, k=3) == [], "never across models"
    provider = Recording()
    provider.model_id = new.model_id
    requeued = embed_queue.requeue_other_model(target, MESSAGES, provider.model_id)
    stats = embed_queue.process_queue(target, MESSAGES, provider)
    assert (requeued, stats.embedded_rows, stats.unchanged_rows) == (3, 3, 0)
    assert provider.calls == 3
    assert _all(
        target, "select embedding_model, count(*) from public.message_embeddings group by 1"
    ) == [(new.model_id, 3)]
    assert _all(target, "select distinct embedding_model from migration.embedding_queue") == [
        (new.model_id,)
    ]
    assert [h.legacy_id for h in search.search(target, "messages", TEXTS[0], new, k=3)] == [1, 2]
    requeued = embed_queue.requeue_other_model(target, MESSAGES, provider.model_id)
    again = embed_queue.process_queue(target, MESSAGES, provider)
    assert (requeued, again.embedded_rows, provider.calls) == (0, 0, 3)


def _mark_removed(dsn: str, legacy_record_id: int) -> None:
    """What the nightly sync does to a row gone from legacy (migration_ops.sync.apply)."""
    from include.entities import get_entity
    from migration_ops.sync.apply import add_removed_columns

    with connect(dsn) as conn:
        add_removed_columns(conn, [get_entity("messages")])
        conn.execute(
            "update public.messages set legacy_removed_at = now() where legacy_record_id = %s",
            (legacy_record_id,),
        )


def test_a_row_marked_removed_loses_its_vectors_queue_row_and_search_hits(target: str) -> None:
    from migration_ops.ai import search

    _enqueue_all(target)
    _enable(target)
    embed_queue.process_queue(target, MESSAGES, HashingProvider())
    _mark_removed(target, 1)
    assert [r[0] for r in _queue(target)] == [2, 3], "the update trigger dropped its queue row"
    hits = search.search(target, "messages", TEXTS[0], HashingProvider())
    assert [h.legacy_id for h in hits] == [2], "filtered by match_messages before the embed step"
    stats = embed_queue.process_queue(target, MESSAGES, HashingProvider())
    assert (stats.removed_rows, stats.embedded_rows) == (1, 0)
    assert [r[0] for r in _queue(target)] == [2, 3]
    assert _all(
        target,
        "select m.legacy_record_id from public.message_embeddings as v "
        "join public.messages as m on m.id = v.row_id order by 1",
    ) == [(2,), (3,)]
    with connect(target) as conn:  # the sync saw it back in legacy
        conn.execute("update public.messages set legacy_removed_at = null")
    assert [r[:2] for r in _queue(target)] == [(1, "pending"), (2, "done"), (3, "done")]


def _dify_client(server: Any, **kwargs: Any) -> Any:
    from migration_ops.ai.dify import DifyKnowledgeClient

    return DifyKnowledgeClient(server.url, "dataset-local-key", sleep=lambda _: None, **kwargs)


def test_a_row_marked_removed_has_its_dify_document_deleted(target: str) -> None:
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import KnowledgeSettings
    from migration_ops.local_dify import LocalDifyServer

    with LocalDifyServer(polls_to_complete=1) as server:
        client = _dify_client(server)
        first = dify_sync.sync_entity(target, MESSAGES, client, KnowledgeSettings())
        _mark_removed(target, 2)
        second = dify_sync.sync_entity(target, MESSAGES, client, KnowledgeSettings())
        names = sorted(d["name"] for d in server.state.documents.values())
    assert (first.created, second.deleted, second.created) == (3, 1, 0)
    assert names == ["messages:1", "messages:3"]
    assert _all(target, "select legacy_id from migration.dify_documents order by 1") == [
        (1,),
        (3,),
    ]


def test_a_rate_limit_while_polling_then_a_retry_makes_one_document_per_row(target: str) -> None:
    """Mapped before polling: the retry polls the pending documents instead of creating again."""
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import (
        RETRIES,
        DifyKnowledgeClient,
        DifyRateLimited,
        KnowledgeSettings,
    )
    from migration_ops.local_dify import LocalDifyServer

    with LocalDifyServer(polls_to_complete=1) as server:

        class LimitedWhilePolling(DifyKnowledgeClient):
            """Dify answers 403 to every attempt of the first poll (the retries run out)."""

            def wait_indexed(self, *args: Any, **kwargs: Any) -> str:
                if server.state.requests["POST"] == 1 + len(TEXTS):  # dataset + documents
                    server.rate_limit(RETRIES + 1)
                return super().wait_indexed(*args, **kwargs)

        limited = LimitedWhilePolling(server.url, "dataset-local-key", sleep=lambda _: None)
        with pytest.raises(DifyRateLimited):
            dify_sync.sync_entity(target, MESSAGES, limited, KnowledgeSettings())
        assert _all(
            target,
            "select legacy_id, indexing_status from migration.dify_documents order by 1",
        ) == [(1, "pending"), (2, "pending"), (3, "pending")], "mapped before polling"
        retry = dify_sync.sync_entity(target, MESSAGES, _dify_client(server), KnowledgeSettings())
        names = sorted(d["name"] for d in server.state.documents.values())
        posts = server.state.requests["POST"]
    assert (retry.created, retry.updated, retry.indexed) == (0, 0, 3)
    assert names == ["messages:1", "messages:2", "messages:3"], "one document per row"
    assert posts == 1 + 3, "one dataset, three documents: nothing created twice"
    assert _all(
        target,
        "select legacy_id, indexing_status, document_id is not null "
        "from migration.dify_documents order by 1",
    ) == [(1, "completed", True), (2, "completed", True), (3, "completed", True)]


def test_documents_are_created_with_the_configured_indexing_technique(target: str) -> None:
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import KnowledgeSettings
    from migration_ops.local_dify import LocalDifyServer

    economy = KnowledgeSettings(indexing_technique="economy")
    with LocalDifyServer(polls_to_complete=1) as server:
        dify_sync.sync_entity(target, MESSAGES, _dify_client(server), economy)
        techniques = [d["indexing_technique"] for d in server.state.documents.values()]
        datasets = [d["indexing_technique"] for d in server.state.datasets.values()]
    assert (techniques, datasets) == (["economy"] * 3, ["economy"])


#: Vectors at which the planner prefers the HNSW index for match_messages's own query (measured
#: on PostgreSQL 18 + pgvector 0.8.5: a sequential scan and sort below ~10,000 rows, where
#: scanning is cheaper; the index at 20,000).
HNSW_ROWS = 20_000


def test_match_messages_own_query_is_planned_on_the_hnsw_index(target: str) -> None:
    """EXPLAIN of the function's body as stored, with real parameters, planner unconstrained."""
    import re

    from psycopg import sql

    with connect(target) as conn:
        embed_queue.use_vector(conn)
        conn.execute("drop index public.message_embeddings_hnsw")  # rebuilt in bulk below
        conn.execute(
            "insert into public.messages (legacy_record_id, message_type_id, content, sent_at, "
            "patient_id) select 100 + g, (select id from public.message_types where code = "
            "'general'), 'synthetic ' || g, now(), (select id from public.profiles) "
            "from generate_series(1, %s) as g",
            (HNSW_ROWS,),
        )
        conn.execute(
            "insert into public.message_embeddings (row_id, chunk_no, content_hash, "
            "embedding_model, embedding_dim_native, embedding) "
            "select m.id, 0, md5(m.content), 'hash:blake2b-v1:1024', 1024, r.v::vector(1024) "
            "from public.messages as m cross join lateral (select array_agg(random() - 0.5) as v "
            "from generate_series(1, 1024) where m.id is not null) as r"
        )
        conn.execute("set local maintenance_work_mem = '256MB'")
        run_sql_file(conn, "target/500_phase5_ai.sql")  # creates the missing index again
        conn.execute("analyze public.message_embeddings")
        conn.execute("analyze public.messages")
        body = conn.execute(
            "select prosrc from pg_proc where proname = 'match_messages'"
        ).fetchone()[0]
        for number, name in enumerate(("query_embedding", "match_threshold", "match_count"), 1):
            body = re.sub(rf"\b{name}\b", f"${number}", body)
        conn.execute(f"prepare match_body (vector, float, int, text) as {body}")
        query = embed_queue.vector_literal(HashingProvider().embed([TEXTS[0]])[0])
        plan = [
            row[0]
            for row in conn.execute(
                sql.SQL("explain execute match_body ({}::vector(1024), 0.0, 5, {})").format(
                    sql.Literal(query), sql.Literal(HashingProvider().model_id)
                )
            ).fetchall()
        ]
    scans = [line.strip().split("  (")[0] for line in plan if "Scan" in line]
    assert scans == [
        "->  Index Scan using message_embeddings_hnsw on message_embeddings v",
        "->  Index Scan using messages_pkey on messages p",
    ]


def test_cli_search_prints_legacy_ids_and_similarities_only(target: str) -> None:
    """``python -m migration_ops.cli search`` in the project environment, as a user runs it."""
    import os
    import subprocess
    import sys

    from psycopg.conninfo import conninfo_to_dict

    from migration_ops import local_env
    from migration_ops.ai import search

    _enqueue_all(target)
    embed_queue.process_queue(target, MESSAGES, HashingProvider())
    parts = conninfo_to_dict(target)
    conn = local_env.airflow_conn_uri(str(parts["host"]), str(parts["dbname"]), str(parts["user"]))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "MIGRATION_EMBEDDING_PROVIDER": "hashing",
        "AIRFLOW_CONN_SUPABASE_DB": conn,
        "AIRFLOW_CONN_LEGACY_DB": conn,  # set, so the CLI starts no embedded server of its own
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://unused@/never",
    }
    printed = subprocess.run(
        [sys.executable, "-m", "migration_ops.cli", "search", "--entity", "messages"]
        + ["--query", "rescan the upper molar", "--k", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    hits = search.search(target, "messages", "rescan the upper molar", HashingProvider(), k=2)
    assert [h.legacy_id for h in hits] == [1, 2]
    assert printed.splitlines() == [
        " legacy_id  similarity",
        f"         1  {hits[0].similarity:.4f}",
        f"         2  {hits[1].similarity:.4f}",
    ]


def test_a_rollback_deletes_every_entitys_dify_documents_not_only_the_first(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each entity's before_sql touches its own vectors only and never drops mapping rows."""
    from migration_ops import rollback
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import KnowledgeSettings
    from migration_ops.local_dify import LocalDifyServer

    _enqueue_all(target)
    embed_queue.process_queue(target, MESSAGES, HashingProvider())
    specs = [e.embedding for e in rollback.deletion_order(5) if e.embedding is not None]
    with LocalDifyServer(polls_to_complete=1) as server:
        for spec in specs:
            dify_sync.sync_entity(target, spec, _dify_client(server), KnowledgeSettings())
        held = sorted(d["name"] for d in server.state.documents.values())
        assert held == ["messages:1", "messages:2", "messages:3", "profiles:1"]
        monkeypatch.delenv("AIRFLOW_CONN_DIFY_KNOWLEDGE", raising=False)
        with pytest.raises(rollback.RollbackRefused) as refused:
            rollback.plan_rollback(target, 5, mode="delete", cascade=False)
        assert refused.value.rule == "rollback.dify_documents_unreachable"
        assert "embed_messages: 3 Dify documents are mapped" in str(refused.value)
        monkeypatch.setenv("AIRFLOW_CONN_DIFY_KNOWLEDGE", server.connection())
        first, *rest = rollback.deletion_order(5)
        assert first.name == "embed_projects"
        rollback.delete_entity_rows(target, first)
        assert _all(
            target, "select entity, count(*) from migration.dify_documents group by 1 order by 1"
        ) == [("messages", 3), ("profiles", 1)], "the first entity leaves the others' mapping"
        assert _all(target, "select count(*) from public.message_embeddings") == [(3,)]
        deleted = {entity.name: rollback.delete_entity_rows(target, entity) for entity in rest}
        left = dict(server.state.documents)
    assert left == {}, "every entity's documents deleted in Dify"
    assert deleted == {"embed_messages": 3, "embed_orders": 0, "embed_profiles": 0}
    assert _all(target, "select count(*) from migration.dify_documents") == [(0,)]
    assert _all(target, "select count(*) from public.message_embeddings") == [(0,)]
