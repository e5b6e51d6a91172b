-- ai/enable_embedding_triggers.sql
-- purpose: switch the embedding enqueue triggers on (post-load SQL of phase 5): from now on the
--          nightly sync's inserts, text changes and deletes reach migration.embedding_queue.
--          Also re-queues rows whose text changed while the triggers were off (a row is done
--          only when embedded_hash = content_hash).
-- inputs: none.
-- idempotent: enabling an enabled trigger is a no-op; the re-queue touches only rows whose
--             hashes differ.
alter table public.messages enable trigger embedding_enqueue_insert,
    enable trigger embedding_enqueue_update, enable trigger embedding_enqueue_delete;
alter table public.orders enable trigger embedding_enqueue_insert,
    enable trigger embedding_enqueue_update, enable trigger embedding_enqueue_delete;
alter table public.profiles enable trigger embedding_enqueue_insert,
    enable trigger embedding_enqueue_update, enable trigger embedding_enqueue_delete;
alter table public.projects enable trigger embedding_enqueue_insert,
    enable trigger embedding_enqueue_update, enable trigger embedding_enqueue_delete;
update migration.embedding_queue
set status = 'pending', attempts = 0, next_attempt_at = now(), last_error_class = null,
    updated_at = now()
where status = 'done' and embedded_hash is distinct from content_hash;
