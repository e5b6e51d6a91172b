-- ai/settle_queue_batch.sql
-- purpose: record the outcome of one batch in migration.embedding_queue, set-based: embedded
--          (or unchanged, or without text) rows are done with the hash they were embedded at;
--          failed rows get attempts + 1, an exponential backoff and their error class, and are
--          dead after the last attempt.
-- inputs: parameter entity; arrays done_ids, done_hashes, model; failed_ids, failed_classes;
--         max_attempts, backoff_seconds (the first retry's delay, doubled per attempt).
-- idempotent: runs in the batch's transaction; a rerun of the batch settles the same rows.
with done as (
    update migration.embedding_queue as q
    set status = 'done', embedded_hash = d.hash, content_hash = d.hash,
        embedding_model = %(model)s, last_error_class = null, updated_at = now()
    from unnest(%(done_ids)s::uuid[], %(done_hashes)s::text[]) as d (row_id, hash)
    where q.entity = %(entity)s and q.row_id = d.row_id
    returning 1
)
update migration.embedding_queue as q
set attempts = q.attempts + 1,
    status = case when q.attempts + 1 >= %(max_attempts)s then 'dead' else 'pending' end,
    next_attempt_at = now() + make_interval(
        secs => %(backoff_seconds)s::float8 * power(2, q.attempts)),
    last_error_class = f.error_class,
    updated_at = now()
from unnest(%(failed_ids)s::uuid[], %(failed_classes)s::text[]) as f (row_id, error_class)
where q.entity = %(entity)s and q.row_id = f.row_id
