"""Dify knowledge bases kept in step with the target: one document per embeddable row.

Per entity: the knowledge base ``<prefix>-<entity>`` is created if absent (indexing technique,
embedding model, hybrid retrieval with rerank from
:class:`~migration_ops.ai.dify.KnowledgeSettings`);
``ai/dify_plan.sql`` compares the rows' builder text hashes with ``migration.dify_documents``;
new rows get a document (named ``<entity>:<legacy id>``, so the mapping can be rebuilt from
Dify), changed ones are updated by text, rows gone or emptied have their document deleted.
Each group's mapping rows are written set-based once its documents exist; indexing is polled
until completed or error and the status recorded. A rerun with nothing changed makes no
create, update or delete call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from include.entities.spec import EmbeddingSpec
from migration_ops.ai.dify import DifyKnowledgeClient, KnowledgeSettings
from migration_ops.db import connect, qualified, read_sql

log = logging.getLogger(__name__)

#: Documents per group: created or updated, polled, then recorded in one statement.
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


def _record(
    target_dsn: str, spec: EmbeddingSpec, dataset_id: str, done: list[tuple[Any, ...]]
) -> None:
    if not done:
        return
    with connect(target_dsn, application_name=f"migration:dify:{spec.queue_entity}") as conn:
        conn.execute(
            read_sql("ai/dify_record.sql"),
            {
                "entity": spec.queue_entity,
                "dataset_id": dataset_id,
                "legacy_ids": [d[0] for d in done],
                "document_ids": [d[1] for d in done],
                "hashes": [d[2] for d in done],
                "statuses": [d[3] for d in done],
            },
        )


def _forget(target_dsn: str, spec: EmbeddingSpec, legacy_ids: list[int]) -> None:
    if not legacy_ids:
        return
    with connect(target_dsn, application_name=f"migration:dify:{spec.queue_entity}") as conn:
        conn.execute(
            read_sql("ai/dify_forget.sql"), {"entity": spec.queue_entity, "legacy_ids": legacy_ids}
        )


def _upsert_group(
    client: DifyKnowledgeClient,
    dataset_id: str,
    spec: EmbeddingSpec,
    group: list[tuple[Any, ...]],
    stats: DifyStats,
    poll_delay: float,
) -> list[tuple[Any, ...]]:
    """Create or update the group's documents, poll their batches; return mapping rows."""
    pending = []
    for action, legacy_id, _, document_id, text, content_hash in group:
        name = f"{spec.queue_entity}:{legacy_id}"
        if action == "create":
            document_id, batch = client.create_document(dataset_id, name, text)
            stats.created += 1
        else:
            batch = client.update_document(dataset_id, document_id, name, text)
            stats.updated += 1
        pending.append((legacy_id, document_id, content_hash, batch))
    done = []
    for legacy_id, document_id, content_hash, batch in pending:
        status = client.wait_indexed(dataset_id, batch, first_delay=poll_delay)
        stats.indexed += status == "completed"
        stats.indexing_errors += status != "completed"
        done.append((legacy_id, document_id, content_hash, status))
    return done


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
    for start in range(0, len(upserts), GROUP):
        group = upserts[start : start + GROUP]
        _record(
            target_dsn,
            spec,
            dataset_id,
            _upsert_group(client, dataset_id, spec, group, stats, poll_delay),
        )
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
