"""Phase 5 (AI): the migrated rows become searchable by meaning.

Its entities read **target** rows (``SourceTable(origin="target")``), not legacy tables: the
extract stages the embeddable columns of ``public.profiles``, ``orders``, ``messages`` and
``projects``; the transform computes each row's content hash with the documented text
builders (``target/500_phase5_ai.sql``); the load upserts one row per target row into its
partition of ``migration.embedding_queue`` (set-based: a rerun with the same text changes
nothing) and switches the enqueue triggers on; the extra ``embed`` step embeds the queue
with the configured provider (:mod:`migration_ops.ai`). Reconciliation: every staged target
row is in the queue or quarantined. See ``docs/decisions/0009-phase-5-ai.md``.
"""

from __future__ import annotations

from include.entities.spec import EmbeddingSpec, EntitySpec, PhaseSpec, Rollback, SourceTable

#: The Asset the nightly sync emits when it completed (``include.entities.SYNC``).
SYNC_COMPLETED = "migration://sync/completed"
#: Post-load SQL of every phase 5 entity: the enqueue triggers go on once the queue is filled.
ENABLE_TRIGGERS = "ai/enable_embedding_triggers.sql"
#: A rollback removes the vectors and the Dify mapping, and switches the triggers off, before
#: deleting the queue rows (the whole queue is phase 5's: ``all_rows``).
ROLLBACK = Rollback(all_rows=True, before_sql=("ai/rollback_phase5.sql",))


def _embed_entity(
    queue_entity: str, parent: str, vectors: str, columns: tuple[str, ...], description: str
) -> EntitySpec:
    return EntitySpec(
        name=f"embed_{queue_entity}",
        phase=5,
        description=description,
        sources=(SourceTable(parent, ("id", *columns), origin="target"),),
        transform_sql=f"transform/embed_{queue_entity}.sql",
        suite=f"embed_{queue_entity}.json",
        target_table=f"migration.embedding_queue_{queue_entity}",
        key="source_key",
        upsert_key="row_id",
        post_load_sql=(ENABLE_TRIGGERS,),
        rollback=ROLLBACK,
        embedding=EmbeddingSpec(queue_entity, f"public.{parent}", f"public.{vectors}"),
    )


EMBED_PROFILES = _embed_entity(
    "profiles",
    "profiles",
    "profile_embeddings",
    ("legacy_user_id", "profile_type", "first_name", "last_name", "patient_status"),
    "Every profile queued and embedded: type, name, patient status.",
)
EMBED_ORDERS = _embed_entity(
    "orders",
    "orders",
    "order_embeddings",
    (
        "legacy_instruction_id",
        "complaint",
        "conditions",
        "objective",
        "notes",
        "scanner_notes",
    ),
    "Every order queued and embedded: its clinical free text.",
)
EMBED_MESSAGES = _embed_entity(
    "messages",
    "messages",
    "message_embeddings",
    ("legacy_record_id", "legacy_comment_id", "content"),
    "Every message queued and embedded: its body, chunked with overlap.",
)
EMBED_PROJECTS = _embed_entity(
    "projects",
    "projects",
    "project_embeddings",
    ("legacy_project_id", "name", "project_type", "project_status"),
    "Every project queued and embedded: name, type, status.",
)

PHASE_5 = PhaseSpec(
    number=5,
    name="ai",
    title="AI: embedding queue, vectors, semantic search, Dify knowledge",
    entities=(EMBED_PROFILES, EMBED_ORDERS, EMBED_MESSAGES, EMBED_PROJECTS),
    schema_sql=("target/500_phase5_ai.sql",),
    # the nightly sync's Asset (``SYNC.asset``): its changes reach the queue through the
    # enqueue triggers and are embedded and sent to Dify by the phase 5 run that follows
    also_after=(SYNC_COMPLETED,),
)
