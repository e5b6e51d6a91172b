-- ai/requeue_other_model.sql
-- purpose: after a provider change, queue again every done row of the entity that was
--          embedded with another model than the configured one (vectors of two models are
--          never compared, so each row must be re-embedded once with the new model; rows
--          without text settle again at once, without a provider call).
-- inputs: parameters entity, model (the configured provider's model id).
-- idempotent: once re-embedded a row's embedding_model is the configured one and it is not
--             touched again; set-based, one statement.
update migration.embedding_queue
set status = 'pending', attempts = 0, next_attempt_at = now(), last_error_class = null,
    updated_at = now()
where entity = %(entity)s
  and status = 'done'
  and embedding_model is distinct from %(model)s
