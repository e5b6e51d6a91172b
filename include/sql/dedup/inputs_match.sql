-- dedup/inputs_match.sql
-- purpose: the run whose de-duplication inputs had this fingerprint, and its outcome counts,
--          when the step may reuse its clusters: the memo (migration.dedup_inputs) holds the
--          same fingerprint and that run's members are all still there (a run recorded with
--          N candidates has N rows in migration.dedup_members). No row: run Splink.
-- parameters: %(entity)s, %(fingerprint)s (migration_ops.dedup.step.input_fingerprint).
-- idempotent: a read-only query.
select i.run_id, i.outcome
from migration.dedup_inputs as i
where i.entity = %(entity)s
  and i.fingerprint = %(fingerprint)s
  and (
      select count(*) from migration.dedup_members as m
      where m.run_id = i.run_id and m.entity = i.entity
  ) = (i.outcome ->> 'candidates')::bigint
