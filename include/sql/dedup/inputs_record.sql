-- dedup/inputs_record.sql
-- purpose: remember the fingerprint of the inputs a de-duplication run computed its clusters
--          from (migration_ops.dedup.step.input_fingerprint), the run, and its outcome counts,
--          so a later run with the same inputs reuses them (dedup/inputs_reuse.sql).
-- runs: in the transaction of dedup/record.sql, after it: the memo commits with the members it
--       points at, or neither does (a step killed before its commit leaves the previous memo).
-- parameters: %(entity)s, %(fingerprint)s, %(run_id)s, %(outcome)s (jsonb: the counts of
--   DedupOutcome, without "reused").
-- idempotent: one row per entity, replaced.
insert into migration.dedup_inputs as i (entity, fingerprint, run_id, outcome, recorded_at)
values (%(entity)s, %(fingerprint)s, %(run_id)s, %(outcome)s, now())
on conflict (entity) do update set
    fingerprint = excluded.fingerprint,
    run_id = excluded.run_id,
    outcome = excluded.outcome,
    recorded_at = excluded.recorded_at
