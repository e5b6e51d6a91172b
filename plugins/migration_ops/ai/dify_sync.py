"""Dify knowledge bases kept in step with the target: one document per embeddable row.

Per entity: the knowledge base ``<prefix>-<entity>`` is created if absent (indexing technique,
embedding model, hybrid retrieval with rerank from
:class:`~migration_ops.ai.dify.KnowledgeSettings`);
``ai/dify_plan.sql`` compares the rows' builder text hashes with ``migration.dify_documents``;
new rows get a document (named ``<entity>:<legacy id>``, so the mapping can be rebuilt from
Dify), changed ones are updated by text, rows gone or emptied have their document deleted.
Each document's mapping row is written (``pending``, with its indexing batch) right after
the call that created or updated it, before any polling; then the group's pending documents
are polled until completed or error and their statuses recorded set-based. Documents left
``pending`` by an interrupted sync are polled first on the next run, never created again.
Rows the nightly sync marked ``legacy_removed_at`` count as gone. A rerun with nothing
changed makes no create, update or delete call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EmbeddingSpec
from migration_ops.ai.dify import DifyKnowledgeClient, KnowledgeSettings
from migration_ops.db import connect, qualified, read_sql

log = logging.getLogger(__name__)

#: Documents per group: created or updated (each mapped at once), then polled.
GROUP = 50


@dataclass
class DifyStats:
    """Counts of one entity's sync (no text, no key)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    indexed: int = 0
    indexing_errors: int = 0


def dataset_name(spec: EmbeddingSpec, settings: KnowledgeSettings) -> str:
    """The knowledge base of the entity (Dify names are 1-40 characters)."""
    return f"{settings.name_prefix}-{spec.queue_entity}"[:40]


def _plan(target_dsn: str, spec: EmbeddingSpec) -> list[tuple[Any, ...]]:
    with connect(target_dsn, application_name=f"migration:dify:{spec.queue_entity}") as conn:
        statement = sql.SQL(read_sql("ai/dify_plan.sql")).format(
            parent=qualified(spec.parent_table)
        )
        return conn.execute(statement, {"entity": spec.queue_entity}).fetchall()


#: One mapping row: legacy id, dataset id, document id, content hash, status, indexing batch.
Mapping = tuple[Any, str, str, str, str, str | None]


def _record(conn: psycopg.Connection[Any], spec: EmbeddingSpec, rows: list[Mapping]) -> None:
    if not rows:
        return
    columns = ("legacy_ids", "dataset_ids", "document_ids", "hashes", "statuses", "batches")
    params: dict[str, Any] = {"entity": spec.queue_entity}
    params.update({name: [row[i] for row in rows] for i, name in enumerate(columns)})
    conn.execute(read_sql("ai/dify_record.sql"), params)


def _forget(target_dsn: str, spec: EmbeddingSpec, legacy_ids: list[int]) -> None:
    if not legacy_ids:
        return
    with connect(target_dsn, application_name=f"migration:dify:{spec.queue_entity}") as conn:
        conn.execute(
            read_sql("ai/dify_forget.sql"), {"entity": spec.queue_entity, "legacy_ids": legacy_ids}
        )


def _upsert_group(
    client: DifyKnowledgeClient,
    conn: psycopg.Connection[Any],
    dataset_id: str,
    spec: EmbeddingSpec,
    group: list[tuple[Any, ...]],
    stats: DifyStats,
    technique: str,
) -> None:
    """Create or update the group's documents, each mapped (``pending``) as soon as it exists.

    One upsert per document, on an autocommit connection, right after its API call: the
    mapping must be durable before the next call, so a sync stopped anywhere (a 403 rate limit
    that outlasts the retries, a kill) never leaves a document its rerun would create again.
    """
    for action, legacy_id, _, document_id, text, content_hash in group:
        name = f"{spec.queue_entity}:{legacy_id}"
        if action == "create":
            document_id, batch = client.create_document(
                dataset_id, name, text, indexing_technique=technique
            )
            stats.created += 1
        else:
            batch = client.update_document(dataset_id, document_id, name, text)
            stats.updated += 1
        _record(conn, spec, [(legacy_id, dataset_id, document_id, content_hash, "pending", batch)])


def _poll_pending(
    client: DifyKnowledgeClient,
    conn: psycopg.Connection[Any],
    spec: EmbeddingSpec,
    stats: DifyStats,
    poll_delay: float,
) -> None:
    """Poll every ``pending`` document of the entity (this run's, or an interrupted run's)."""
    pending = conn.execute(read_sql("ai/dify_pending.sql"), {"entity": spec.queue_entity})
    done: list[Mapping] = []
    for legacy_id, dataset_id, document_id, content_hash, batch in pending.fetchall():
        status = client.wait_indexed(dataset_id, batch, first_delay=poll_delay)
        stats.indexed += status == "completed"
        stats.indexing_errors += status != "completed"
        done.append((legacy_id, dataset_id, document_id, content_hash, status, batch))
    _record(conn, spec, done)


def sync_entity(
    target_dsn: str,
    spec: EmbeddingSpec,
    client: DifyKnowledgeClient,
    settings: KnowledgeSettings,
    *,
    poll_delay: float = 2.0,
) -> DifyStats:
    """Bring the entity's knowledge base in step with the target (see the module docstring)."""
    dataset_id = client.ensure_dataset(dataset_name(spec, settings), settings)
    plan = _plan(target_dsn, spec)
    stats = DifyStats()
    deletes = [row for row in plan if row[0] == "delete"]
    for _, _, doc_dataset, document_id, _, _ in deletes:
        client.delete_document(doc_dataset, document_id)
    _forget(target_dsn, spec, [row[1] for row in deletes])
    stats.deleted = len(deletes)
    upserts = [row for row in plan if row[0] != "delete"]
    with connect(
        target_dsn, application_name=f"migration:dify:{spec.queue_entity}", autocommit=True
    ) as conn:
        _poll_pending(client, conn, spec, stats, poll_delay)
        technique = settings.indexing_technique
        for start in range(0, len(upserts), GROUP):
            group = upserts[start : start + GROUP]
            _upsert_group(client, conn, dataset_id, spec, group, stats, technique)
            _poll_pending(client, conn, spec, stats, poll_delay)
    log.info("%s: dify sync %s", spec.queue_entity, stats)
    return stats


def delete_all(target_dsn: str, spec: EmbeddingSpec, client: DifyKnowledgeClient) -> int:
    """Delete every mapped document of the entity (phase 5 rollback); return how many."""
    with connect(target_dsn, application_name=f"migration:dify:{spec.queue_entity}") as conn:
        if conn.execute("select to_regclass('migration.dify_documents')").fetchone() == (None,):
            return 0
        mapped = conn.execute(
            "select legacy_id, dataset_id, document_id from migration.dify_documents "
            "where entity = %s",
            (spec.queue_entity,),
        ).fetchall()
    for _, dataset_id, document_id in mapped:
        client.delete_document(dataset_id, document_id)
    _forget(target_dsn, spec, [row[0] for row in mapped])
    return len(mapped)
