-- ai/dify_pending.sql
-- purpose: the entity's documents whose indexing has not been seen to finish (status
--          'pending'): created or updated by this sync, or by one interrupted while polling.
-- inputs: parameter entity.
-- idempotent: read only.
select legacy_id, dataset_id, document_id, content_hash, indexing_batch
from migration.dify_documents
where entity = %(entity)s and indexing_status = 'pending'
order by legacy_id
