-- ai/delete_vectors.sql
-- purpose: remove the old vectors of the rows a batch re-embeds (or that lost their text).
-- inputs: identifier {vectors}; parameter row_ids.
-- idempotent: a second run deletes nothing more.
delete from {vectors} where row_id = any(%(row_ids)s::uuid[])
