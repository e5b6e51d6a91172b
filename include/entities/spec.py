"""Declarative description of one migrated entity and of one migration phase.

A spec is plain data: the DAG factory turns a phase's specs into task groups, the engine
(``migration_ops``) reads them to extract, transform, validate, load and checkpoint. Adding
an entity means adding a spec, its transform SQL and its suite, never a new DAG.

Later issues extend a spec rather than the DAGs: an incremental cursor (nightly sync),
embedding sources; de-duplication is :class:`DedupSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Literal


@dataclass(frozen=True)
class ChangeDetection:
    """How the nightly sync finds the rows of one legacy table that changed since the last run.

    Kinds (``legacy-system.md``: only ``dispatch_patient`` and ``dispatch_instruction`` have an
    ``updated_at``; records, files, states, tasks and comments are insert-only; the rest are
    mutable without any timestamp):

    * ``updated_at``: rows whose ``cursor_column`` is at or after the stored cursor minus a
      look-back window (late commits with an older timestamp), plus ids above the stored
      high-water mark (rows with no timestamp yet);
    * ``insert_only``: ids above the stored high-water mark minus an id look-back (an insert
      whose id was taken before the last snapshot but committed after it);
    * ``content``: ``(id, md5 of the copied columns)`` streamed from legacy and compared with the
      hashes kept from the last sync: only ids and hashes leave legacy for unchanged rows;
    * ``full``: small tables read whole every time (code lists);
    * ``referenced``: an id list for existence checks (a generic relation's targets), staged
      only for the ids the staged rows of the entity's primary table name in
      ``referenced_by`` (all of them in a full run): the delta's messages need to know
      whether the ten projects they point at exist, not every project's id.

    Attributes:
        kind: one of the kinds above.
        cursor_column: the timestamp column of ``updated_at``.
        referenced_by: the primary table's column whose values ``referenced`` stages.
    """

    kind: Literal["updated_at", "insert_only", "content", "full", "referenced"] = "content"
    cursor_column: str | None = None
    referenced_by: str | None = None


#: Defaults shared by the specs.
CONTENT = ChangeDetection("content")
INSERT_ONLY = ChangeDetection("insert_only")
FULL = ChangeDetection("full")
UPDATED_AT = ChangeDetection("updated_at", "updated_at")


@dataclass(frozen=True)
class SourceTable:
    """A legacy table copied into staging: only the columns in scope.

    Attributes:
        table: legacy table name (schema ``public`` of the legacy database).
        columns: columns to copy; quoted as identifiers, so reserved words such as
            ``"order"`` or ``"on"`` need no special care.
        change: how the nightly sync finds its changed rows (see :class:`ChangeDetection`).
        primary_columns: columns holding the legacy id of the entity's primary row each row
            belongs to (``id`` for the primary table, ``user_id`` for a user's groups): a
            changed row re-derives those entity rows, and a sync stages exactly the rows of
            every source table that belong to them.
        origin: ``legacy`` (the default) or ``target``: a table of the target's ``public``
            schema, staged from the target itself (phase 5 embeds migrated rows, not legacy
            ones). Either way the entity's transform reads ``staging.<entity>__<table>``.
    """

    table: str
    columns: tuple[str, ...]
    change: ChangeDetection = CONTENT
    primary_columns: tuple[str, ...] = ("id",)
    origin: str = "legacy"


@dataclass(frozen=True)
class Follow:
    """Entity rows to re-derive because a parent entity's rows changed in the same sync.

    Orders take their doctor and office through the patient: a patient moved to another
    doctor must re-derive that patient's orders although no instruction row changed.

    Attributes:
        parent: the parent entity (extracted earlier in the same sync).
        parent_table: the parent's staged source table whose ids name the changed parents.
        column: the column of this entity's primary source holding that parent id.
    """

    parent: str
    parent_table: str
    column: str


@dataclass(frozen=True)
class GenericRelation:
    """One target of a Django generic relation, resolved by content type *name*, never by id.

    Django's ``(content_type_id, object_id)`` pairs point at any model; content-type ids are
    an accident of one database's history and differ between databases. The engine renders
    an entity's relations as the temporary tables ``ref_generic_relations`` (which
    ``(app_label, model)`` fills which foreign-key column) and ``generic_targets`` (every
    legacy id of each related table with the target row it became, if any), so the
    transform SQL joins ``django_content_type`` by ``(app_label, model)`` and tells a
    dangling id (no legacy row) from a parent that was not migrated (quarantined upstream).

    Attributes:
        app_label: Django app label of the related model (``dispatch``, ``auth``).
        model: Django model name, lower case (``patient``, ``user``).
        fk_column: the explicit foreign-key column of the target row it fills.
        parent_table: schema-qualified target table the foreign key points at.
        parent_key: that table's legacy-id column the generic relation's object id matches.
        legacy_table: the related model's legacy table; its ids are staged (``id`` only)
            to tell a dangling object id from one whose target row is missing.
        object_id_column: the column of the entity's primary table holding the object id
            (Django's ``object_id``; ``target_id`` in ``dispatch_record``).
    """

    app_label: str
    model: str
    fk_column: str
    parent_table: str
    parent_key: str
    legacy_table: str
    object_id_column: str = "target_id"

    @property
    def source(self) -> SourceTable:
        """The legacy ids to stage for this relation: those the entity's rows point at."""
        return SourceTable(
            self.legacy_table,
            ("id",),
            change=ChangeDetection("referenced", referenced_by=self.object_id_column),
            primary_columns=(),
        )


@dataclass(frozen=True)
class TextRepair:
    """A free-text column repaired by the documented mojibake rule after the transform SQL.

    Attributes:
        column: column of ``staging.<entity>__transformed`` repaired in place.
        metadata_key: key of ``metadata`` that keeps the original text of a repaired row.
    """

    column: str
    metadata_key: str


@dataclass(frozen=True)
class ObjectCopySpec:
    """Bytes to copy from the legacy media store to Supabase Storage between validate and load.

    The copy step (:mod:`migration_ops.storage`) reads the entity's validated rows, copies each
    row's object (skipping one already stored with the same SHA-256), quarantines a row whose
    source bytes are missing under :attr:`missing_rule`, rebuilds ``__validated`` and fills
    the storage columns of the rows whose bytes are in Storage.

    Attributes:
        missing_rule: quarantine rule of a row whose bytes are not in the media store.
        source_path: column with the bytes' path relative to the media root.
        object_key: column with the object's key in the bucket.
        content_type: column with the MIME type the object is stored with.
        bucket_column: target column set to the bucket of a stored object.
        path_column: target column set to the key of a stored object.
        checksum_column: target column set to the stored bytes' SHA-256 (hex).
    """

    missing_rule: str
    source_path: str = "_source_path"
    object_key: str = "_object_key"
    content_type: str = "mime_type"
    bucket_column: str = "storage_bucket"
    path_column: str = "storage_path"
    checksum_column: str = "sha256"


@dataclass(frozen=True)
class DirectColumn:
    """A legacy column that never rests in staging: streamed into the target at load.

    For credentials (``auth_user.password``): a staged copy would sit in the target's
    ``staging`` schema between tasks. The load reads it from a read-only legacy session into a
    temporary table dropped at commit and updates the target rows by legacy id.

    Attributes:
        legacy_table: legacy table holding the value.
        legacy_key: its id column, matched against the entity's ``key``.
        legacy_column: the legacy column.
        target_column: the target column it fills.
    """

    legacy_table: str
    legacy_key: str
    legacy_column: str
    target_column: str


@dataclass(frozen=True)
class DedupSpec:
    """Duplicate records of the entity linked by an extra step between transform and validate.

    The step (:mod:`migration_ops.dedup.step`) reads the candidate rows of
    ``staging.<entity>__transformed``, scores pairs with the record-linkage engine, writes
    the clusters (survivor per cluster) to ``migration.dedup_members``, the linked pairs to
    ``migration.dedup_links`` and the middle band to ``migration.dedup_review``. A post-load
    SQL file points each linked duplicate at its survivor; nothing is deleted, and the load
    counts linked duplicates as ``merged_rows`` (decision 0012).

    Attributes:
        fields: ``(role, SQL expression over the transformed row)`` per canonical role of
            :data:`include.dedup.model.ROLES`; expressions are project code, never input.
        candidates: SQL condition selecting the rows to de-duplicate (e.g. patients only).
        activity: SQL expression of a row's most recent activity (survivorship tie-break).
        merged_column: target column that is non-null on a linked duplicate.
    """

    fields: tuple[tuple[str, str], ...]
    candidates: str
    activity: str
    merged_column: str = "merged_into"


@dataclass(frozen=True)
class EmbeddingSpec:
    """Phase 5: after the load (which enqueued the rows), embed the entity's queue.

    The embed step (:mod:`migration_ops.ai.embed_queue`) reads pending rows of the queue partition,
    builds each row's text with ``migration.embedding_text(<parent row>)`` (the documented
    builders of ``target/500_phase5_ai.sql``), chunks it, embeds it with the configured
    provider and writes ``vectors_table``.

    Attributes:
        queue_entity: the row's ``entity`` in ``migration.embedding_queue`` (its partition).
        parent_table: the embedded table (``public.messages``).
        vectors_table: where its vectors go (``public.message_embeddings``).
    """

    queue_entity: str
    parent_table: str
    vectors_table: str


@dataclass(frozen=True)
class Rollback:
    """How a rollback of the entity's phase removes what the entity loaded.

    Rollbacks run later phases first and, within a phase, children before parents; each
    entity in one transaction: ``before_sql`` files, then one set-based delete.

    Attributes:
        all_rows: delete every row of the target table instead of only the rows carrying
            a legacy id (the default). For tables the phase's own schema seeds, whose seeded
            rows a load may have merged into: the next run seeds them again and reaches the
            same state (order types).
        before_sql: files under ``include/sql`` run first in the same transaction, e.g. to
            disable triggers or clear a queue that references the rows (phase 5).
    """

    all_rows: bool = False
    before_sql: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntitySpec:
    """One target entity: where it comes from, how it is shaped, checked and loaded.

    Attributes:
        name: entity name, also the prefix of its staging tables (``staging.<name>__*``).
        phase: migration phase number (1 core, 2 relationships, ...).
        description: one line for the DAG docs and the reports.
        sources: legacy tables to extract. The first is the *primary* source: one
            primary row is one entity row, and its count is the entity's ``source_rows``.
        transform_sql: file under ``include/sql`` that builds ``staging.<name>__transformed``
            from the staged sources: one row per primary source row, in target shape.
        suite: Great Expectations suite file under ``expectations/``.
        target_table: schema-qualified target table.
        key: column of the target (and of the transformed rows) holding the legacy id of
            the primary source; quarantine and reconciliation are keyed by it.
        upsert_key: unique column the upsert conflicts on; defaults to ``key``. Differs
            only where legacy rows merge into seeded reference rows (order types: course 1
            becomes the seeded ``main`` type, matched by ``code``).
        parents: entities whose rows must be loaded first (foreign keys resolve to them).
        reference_tables: code maps from :mod:`include.transforms.reference` made available
            to the transform SQL as temporary tables of the same name.
        post_load_sql: files run after the upsert in the same transaction (e.g. to resolve a
            self-reference once all rows of the entity exist).
        rollback: what a rollback of the phase deletes (default: rows with a legacy id).
        generic_relations: how a Django generic relation of the primary source resolves into
            explicit foreign keys (see :class:`GenericRelation`); configuration, not SQL.
        text_repair: free-text columns repaired after the transform SQL (see
            :class:`TextRepair` and :mod:`include.transforms.text_repair`).
        object_copy: bytes copied to Supabase Storage by an extra step between validate and
            load (see :class:`ObjectCopySpec`).
        direct_columns: target columns filled straight from legacy at load, never staged
            (see :class:`DirectColumn`).
        follows: parent entities whose changes re-derive rows of this one in a sync
            (see :class:`Follow`).
        dedup: duplicate rows linked (not merged away) by an extra step between transform
            and validate (see :class:`DedupSpec`).
        embedding: rows embedded from the queue by an extra step after the load (phase 5,
            see :class:`EmbeddingSpec`).
    """

    name: str
    phase: int
    description: str
    sources: tuple[SourceTable, ...]
    transform_sql: str
    suite: str
    target_table: str
    key: str
    upsert_key: str | None = None
    parents: tuple[str, ...] = ()
    reference_tables: tuple[str, ...] = ()
    post_load_sql: tuple[str, ...] = ()
    rollback: Rollback = Rollback()
    generic_relations: tuple[GenericRelation, ...] = ()
    text_repair: tuple[TextRepair, ...] = ()
    object_copy: ObjectCopySpec | None = None
    direct_columns: tuple[DirectColumn, ...] = ()
    follows: tuple[Follow, ...] = ()
    dedup: DedupSpec | None = None
    embedding: EmbeddingSpec | None = None

    @property
    def conflict_key(self) -> str:
        """Column the set-based upsert conflicts on."""
        return self.upsert_key or self.key

    @property
    def primary_source(self) -> SourceTable:
        """The legacy table whose rows this entity's rows correspond to one to one."""
        return self.sources[0]

    def staging_table(self, suffix: str) -> str:
        """Schema-qualified name of one of this entity's staging tables."""
        return f"staging.{self.name}__{suffix}"


@dataclass(frozen=True)
class PhaseSpec:
    """A migration phase: one DAG, gated on the previous phase having validated.

    Attributes:
        number: 1-based phase number.
        name: short name used in the DAG id (``migrate_phase_<number>_<name>``).
        title: human title for docs and reports.
        entities: the phase's entity specs (any order; :meth:`ordered` sorts them).
        schema_sql: target DDL files (under ``include/sql``) applied idempotently at start.
        dag: DAG id when it is not ``migrate_phase_<number>_<name>`` (the sync's).
        asset: Asset URI when it is not ``migration://phase-<number>/validated``.
        also_after: further Asset URIs that schedule the phase besides the previous phase's
            (any one of them triggers a run): phase 5 also runs after every nightly sync, so
            the rows the sync changed are embedded and indexed the same night.
    """

    number: int
    name: str
    title: str
    entities: tuple[EntitySpec, ...]
    schema_sql: tuple[str, ...] = field(default=())
    dag: str = ""
    asset: str = ""
    also_after: tuple[str, ...] = ()

    @property
    def dag_id(self) -> str:
        """Airflow DAG id of the phase."""
        return self.dag or f"migrate_phase_{self.number}_{self.name}"

    @property
    def asset_uri(self) -> str:
        """URI of the Asset emitted once the phase has loaded and validated."""
        return self.asset or f"migration://phase-{self.number}/validated"

    def ordered(self) -> list[EntitySpec]:
        """Entities in an order where every parent comes first: by phase, then by parents."""
        by_name = {entity.name: entity for entity in self.entities}
        graph = {e.name: {p for p in e.parents if p in by_name} for e in self.entities}
        order = list(TopologicalSorter(graph).static_order())
        return sorted((by_name[name] for name in order), key=lambda e: e.phase)
