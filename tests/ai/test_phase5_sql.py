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
