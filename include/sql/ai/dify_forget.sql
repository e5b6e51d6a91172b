-- ai/dify_forget.sql
-- purpose: drop the mapping rows of Dify documents the sync deleted (set-based).
-- inputs: parameters entity; array legacy_ids.
-- idempotent: a second run deletes nothing.
delete from migration.dify_documents
where entity = %(entity)s and legacy_id = any(%(legacy_ids)s::bigint[])
