-- ai/unchanged_rows.sql
-- purpose: the batch's rows whose vectors already hold this text (same content hash, same
--          model): they are settled as done without calling the provider.
-- inputs: identifier {vectors}; parameters row_ids, hashes (parallel arrays), model.
-- idempotent: read only.
select distinct v.row_id
from unnest(%(row_ids)s::uuid[], %(hashes)s::text[]) as b (row_id, hash)
join {vectors} as v on v.row_id = b.row_id and v.content_hash = b.hash
where v.embedding_model = %(model)s
