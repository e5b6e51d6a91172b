-- Forget the recorded verdicts of the rows this pass judged (verdicts_record.sql then records
-- the failing ones again): a judged row that passed loads, and the cache stays small.
--   in : {judged} the rows GX judged, {key}, %(entity)s.
--   out: their migration.row_verdicts entries deleted.
-- Idempotent: a retried validate deletes and records the same entries.
delete from migration.row_verdicts as v
using {judged} as t
where v.entity = %(entity)s and v.legacy_id = t.{key}::bigint
