-- Take the rows whose verdict was carried over (verdicts_carry.sql) out of the changed rows.
--   in : {changed}, {decisions} the staged decisions (only carried ones so far), {key}.
--   out: {changed} without them; the statement's row count is how many kept their verdict.
-- Idempotent: deleting rows already deleted deletes nothing.
delete from {changed} as c
using {decisions} as d
where d.legacy_id = c.{key}::bigint
