-- ai/claim_queue_batch.sql
-- purpose: the next batch of due queue rows of one entity, locked for this transaction, with
--          the row's current builder text (migration.embedding_text of the parent row).
-- inputs: identifier {parent} (the embedded table); parameters entity, limit.
-- idempotent: read only; rows stay locked until the batch's transaction ends, so parallel
--             workers take disjoint batches (skip locked) and a killed worker's rows are free
--             again at once (its transaction rolled back: nothing half-written).
select q.row_id, migration.embedding_text(p) as text
from migration.embedding_queue as q
join {parent} as p on p.id = q.row_id
where q.entity = %(entity)s
  and q.status = 'pending'
  and q.next_attempt_at <= now()
order by q.next_attempt_at, q.row_id
limit %(limit)s
for update of q skip locked
