-- ai/dify_record.sql
-- purpose: record synced Dify documents in migration.dify_documents, set-based (one upsert
--          from unnest'ed arrays per group of documents).
-- inputs: parameters entity, dataset_id; arrays legacy_ids, document_ids, hashes, statuses.
-- idempotent: upsert by (entity, legacy_id): recording the same document again changes nothing.
insert into migration.dify_documents as m
    (entity, legacy_id, dataset_id, document_id, content_hash, indexing_status)
select %(entity)s, u.legacy_id, %(dataset_id)s, u.document_id, u.content_hash, u.status
from unnest(%(legacy_ids)s::bigint[], %(document_ids)s::text[], %(hashes)s::text[],
            %(statuses)s::text[]) as u (legacy_id, document_id, content_hash, status)
on conflict (entity, legacy_id) do update
set dataset_id = excluded.dataset_id, document_id = excluded.document_id,
    content_hash = excluded.content_hash, indexing_status = excluded.indexing_status,
    synced_at = now()
