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
