-- ai/dify_record.sql
-- purpose: record Dify documents in migration.dify_documents as soon as they are created or
--          updated (status 'pending' with their indexing batch), before any polling: a sync
--          stopped after this point (403 rate limit, kill) finds the mapping and never creates
--          the document twice. Also records final indexing statuses (same upsert).
-- inputs: parameter entity; arrays legacy_ids, dataset_ids, document_ids, hashes, statuses,
--         batches.
-- idempotent: upsert by (entity, legacy_id): recording the same document again changes nothing.
insert into migration.dify_documents as m
    (entity, legacy_id, dataset_id, document_id, content_hash, indexing_status, indexing_batch)
select %(entity)s, u.legacy_id, u.dataset_id, u.document_id, u.content_hash, u.status, u.batch
from unnest(%(legacy_ids)s::bigint[], %(dataset_ids)s::text[], %(document_ids)s::text[],
            %(hashes)s::text[], %(statuses)s::text[], %(batches)s::text[])
     as u (legacy_id, dataset_id, document_id, content_hash, status, batch)
on conflict (entity, legacy_id) do update
set dataset_id = excluded.dataset_id, document_id = excluded.document_id,
    content_hash = excluded.content_hash, indexing_status = excluded.indexing_status,
    indexing_batch = excluded.indexing_batch, synced_at = now()
