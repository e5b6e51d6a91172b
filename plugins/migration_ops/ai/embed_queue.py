"""The embedding queue: batches of due rows embedded in parallel, settled in one transaction.

Each batch is one target transaction: claim due rows (``for update skip locked``), read their
builder text, skip rows whose vectors already hold that text (content hash and model), chunk
and embed the rest in a bounded thread pool, replace their vectors and settle the queue
(done / retried with exponential backoff / dead after :data:`MAX_ATTEMPTS` with the error
class). A kill anywhere rolls the whole batch back: nothing is lost (the rows are pending
again) and nothing is duplicated (vectors are replaced under their primary key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from include.entities.spec import EmbeddingSpec
from migration_ops.ai import text as texts
from migration_ops.ai.providers import EmbeddingProvider
from migration_ops.db import connect, qualified, read_sql, table_columns

log = logging.getLogger(__name__)

#: Attempts before a queue row is dead-lettered (the seed plan: max 3 attempts).
MAX_ATTEMPTS = 3


@dataclass
class QueueStats:
    """Counts of one queue run (ids and counts only: no text)."""

    embedded_rows: int = 0
    chunks: int = 0
    unchanged_rows: int = 0
    empty_rows: int = 0
    failed_attempts: int = 0
    batches: int = 0
    dead_rows: int = 0
    removed_rows: int = 0

    def add(self, other: QueueStats) -> None:
        """Accumulate another batch's counts."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Batch:
    done: dict[Any, str] = field(default_factory=dict)  # row id -> content hash
    failed: dict[Any, str] = field(default_factory=dict)  # row id -> error class
    chunk_rows: list[Any] = field(default_factory=list)
    chunk_nos: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    vectors: list[str] = field(default_factory=list)


def use_vector(conn: psycopg.Connection[Any]) -> None:
    """Put the ``vector`` extension's schema on this transaction's search path.

    Supabase installs it in ``extensions``; the casts and operators must resolve either way.
    """
    conn.execute(
        "select set_config('search_path', 'public, migration, ' || "
        "(select extnamespace::regnamespace::text from pg_extension where extname = 'vector')"
        " || ', pg_catalog', true)"
    )


def error_class(error: BaseException) -> str:
    """The error's class, or a botocore error's code (``ThrottlingException``): never a message."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


def vector_literal(vector: np.ndarray) -> str:
    """Pgvector's text form, for the set-based ``unnest`` insert."""
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def _embed_row(provider: EmbeddingProvider, text: str) -> list[np.ndarray]:
    return provider.embed(texts.chunks(text))


def _embed(
    provider: EmbeddingProvider, pending: list[tuple[Any, str]], pool: ThreadPoolExecutor
) -> _Batch:
    """Embed every pending row's chunks in the pool; a row fails as a whole, never half."""
    batch = _Batch()
    futures = {row_id: pool.submit(_embed_row, provider, text) for row_id, text in pending}
    text_of = dict(pending)
    for row_id, future in futures.items():
        try:
            vectors = future.result()
        except Exception as error:  # noqa: BLE001 - per item: retried later or dead-lettered
            batch.failed[row_id] = error_class(error)
            continue
        digest = texts.content_hash(text_of[row_id])
        batch.done[row_id] = digest
        for number, vector in enumerate(vectors):
            batch.chunk_rows.append(row_id)
            batch.chunk_nos.append(number)
            batch.hashes.append(digest)
            batch.vectors.append(vector_literal(vector))
    return batch


def _unchanged(
    conn: psycopg.Connection[Any], spec: EmbeddingSpec, rows: list[tuple[Any, str]], model: str
) -> set[Any]:
    ids = [row_id for row_id, _ in rows]
    hashes = [texts.content_hash(text) for _, text in rows]
    query = sql.SQL(read_sql("ai/unchanged_rows.sql")).format(vectors=qualified(spec.vectors_table))
    found = conn.execute(query, {"row_ids": ids, "hashes": hashes, "model": model}).fetchall()
    return {row[0] for row in found}


def process_batch(
    target_dsn: str,
    spec: EmbeddingSpec,
    provider: EmbeddingProvider,
    pool: ThreadPoolExecutor,
    *,
    batch_size: int = 100,
    backoff_seconds: float = 1.0,
) -> QueueStats | None:
    """Claim, embed, write and settle one batch in one transaction; None when nothing is due."""
    with connect(target_dsn, application_name=f"migration:embed:{spec.queue_entity}") as conn:
        use_vector(conn)
        claim = sql.SQL(read_sql("ai/claim_queue_batch.sql")).format(
            parent=qualified(spec.parent_table)
        )
        claimed = conn.execute(claim, {"entity": spec.queue_entity, "limit": batch_size}).fetchall()
        if not claimed:
            return None
        rows = [(row_id, text or "") for row_id, text in claimed]
        unchanged = _unchanged(conn, spec, [r for r in rows if r[1]], provider.model_id)
        pending = [(row_id, text) for row_id, text in rows if text and row_id not in unchanged]
        batch = _embed(provider, pending, pool)
        stats = QueueStats(
            embedded_rows=len(batch.done),
            chunks=len(batch.chunk_rows),
            unchanged_rows=len(unchanged),
            empty_rows=sum(1 for _, text in rows if not text),
            failed_attempts=len(batch.failed),
            batches=1,
        )
        for row_id, text in rows:
            if row_id in unchanged or not text:
                batch.done[row_id] = texts.content_hash(text)
        _write(conn, spec, provider, batch, [r for r, t in rows if not t])
        _settle(conn, spec, provider.model_id, batch, backoff_seconds)
    return stats


def _write(
    conn: psycopg.Connection[Any],
    spec: EmbeddingSpec,
    provider: EmbeddingProvider,
    batch: _Batch,
    emptied: Sequence[Any],
) -> None:
    """Replace the vectors of the rows embedded now (and drop those of rows now without text)."""
    replaced = sorted({*batch.chunk_rows, *emptied}, key=str)
    if not replaced:
        return
    vectors = qualified(spec.vectors_table)
    conn.execute(
        sql.SQL(read_sql("ai/delete_vectors.sql")).format(vectors=vectors), {"row_ids": replaced}
    )
    conn.execute(
        sql.SQL(read_sql("ai/write_vectors.sql")).format(vectors=qualified(spec.vectors_table)),
        {
            "chunk_rows": batch.chunk_rows,
            "chunk_nos": batch.chunk_nos,
            "hashes": batch.hashes,
            "models": [provider.model_id] * len(batch.chunk_rows),
            "native_dims": [provider.native_dimensions] * len(batch.chunk_rows),
            "embeddings": batch.vectors,
        },
    )


def _settle(
    conn: psycopg.Connection[Any],
    spec: EmbeddingSpec,
    model: str,
    batch: _Batch,
    backoff_seconds: float,
) -> None:
    conn.execute(
        read_sql("ai/settle_queue_batch.sql"),
        {
            "entity": spec.queue_entity,
            "done_ids": list(batch.done),
            "done_hashes": list(batch.done.values()),
            "model": model,
            "failed_ids": list(batch.failed),
            "failed_classes": list(batch.failed.values()),
            "max_attempts": MAX_ATTEMPTS,
            "backoff_seconds": backoff_seconds,
        },
    )


def _next_due_in(target_dsn: str, spec: EmbeddingSpec) -> float | None:
    """Seconds until the entity's next pending row is due; None when none is pending."""
    with connect(target_dsn, application_name=f"migration:embed:{spec.queue_entity}") as conn:
        row = conn.execute(
            "select extract(epoch from min(next_attempt_at) - now()) from migration.embedding_queue"
            " where entity = %s and status = 'pending'",
            (spec.queue_entity,),
        ).fetchone()
    return None if row is None or row[0] is None else max(0.0, float(row[0]))


def purge_removed(target_dsn: str, spec: EmbeddingSpec) -> int:
    """Delete the vectors and queue rows of rows the sync marked ``legacy_removed_at``.

    A row gone from legacy is treated as deleted (``ai/purge_removed.sql``); before any sync
    the column does not exist and nothing is gone. Returns the rows that lost vectors or a
    queue row.
    """
    with connect(target_dsn, application_name=f"migration:embed:{spec.queue_entity}") as conn:
        if "legacy_removed_at" not in table_columns(conn, spec.parent_table):
            return 0
        statement = sql.SQL(read_sql("ai/purge_removed.sql")).format(
            parent=qualified(spec.parent_table), vectors=qualified(spec.vectors_table)
        )
        row = conn.execute(statement, {"entity": spec.queue_entity}).fetchone()
    return int(row[0]) if row else 0


def requeue_other_model(target_dsn: str, spec: EmbeddingSpec, model: str) -> int:
    """Queue again the rows embedded with another model than ``model`` (a provider change).

    Phase 5's embed step calls it before working the queue. Their vectors stay searchable
    under their own model id until the queue replaces them; ``match_<entity>`` compares a
    query only with vectors of its own model. Returns the rows queued again.
    """
    with connect(target_dsn, application_name=f"migration:embed:{spec.queue_entity}") as conn:
        return conn.execute(
            read_sql("ai/requeue_other_model.sql"), {"entity": spec.queue_entity, "model": model}
        ).rowcount


def process_queue(
    target_dsn: str,
    spec: EmbeddingSpec,
    provider: EmbeddingProvider,
    *,
    batch_size: int = 100,
    workers: int = 4,
    backoff_seconds: float = 1.0,
    max_wait_seconds: float = 60.0,
) -> QueueStats:
    """Work the entity's queue until no row is pending: every row ends done or dead.

    Rows waiting for their backoff are waited for (at most ``max_wait_seconds`` each time).
    Rows gone from legacy are purged first (:func:`purge_removed`).
    """
    stats = QueueStats(removed_rows=purge_removed(target_dsn, spec))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
        while True:
            batch = process_batch(
                target_dsn,
                spec,
                provider,
                pool,
                batch_size=batch_size,
                backoff_seconds=backoff_seconds,
            )
            if batch is not None:
                stats.add(batch)
                continue
            wait = _next_due_in(target_dsn, spec)
            if wait is None:
                break
            time.sleep(min(wait, max_wait_seconds) + 0.01)
    stats.dead_rows = dead_rows(target_dsn, spec)
    log.info("%s: embedding queue %s", spec.queue_entity, stats)
    return stats


def dead_rows(target_dsn: str, spec: EmbeddingSpec) -> int:
    """Rows of the entity dead-lettered (after :data:`MAX_ATTEMPTS` failed attempts)."""
    with connect(target_dsn, application_name=f"migration:embed:{spec.queue_entity}") as conn:
        row = conn.execute(
            "select count(*) from migration.embedding_queue where entity = %s and status = 'dead'",
            (spec.queue_entity,),
        ).fetchone()
    return int(row[0]) if row else 0
