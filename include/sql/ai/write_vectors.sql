-- ai/write_vectors.sql
-- purpose: write the vectors of the batch's embedded rows, set-based (one insert from unnest'ed
--          arrays), in the batch's transaction, after ai/delete_vectors.sql removed their old ones.
-- inputs: identifier {vectors}; parallel arrays chunk_rows, chunk_nos, hashes, models,
--         native_dims, embeddings (vector text literals).
-- idempotent: follows the delete of the same rows; the (row_id, chunk_no) primary key makes a
--             duplicate impossible.
insert into {vectors} (row_id, chunk_no, content_hash, embedding_model, embedding_dim_native,
                       embedding)
select u.row_id, u.chunk_no, u.content_hash, u.model, u.native_dim, u.embedding::vector(1024)
from unnest(%(chunk_rows)s::uuid[], %(chunk_nos)s::int[], %(hashes)s::text[],
            %(models)s::text[], %(native_dims)s::int[], %(embeddings)s::text[])
     as u (row_id, chunk_no, content_hash, model, native_dim, embedding)
