-- Carry the suite's verdicts over to held-back rows that came back unchanged.
--   in : {changed} the rows that would change the target (include/sql/validate/changed_rows.sql),
--        {decisions} the entity's staged quarantine decisions (empty: the validate step reset
--        them), {key} the legacy-id column, {row_hash} the hash expression over {changed}'s
--        mapped columns (alias c), %(entity)s, %(suite_sha256)s the suite file's fingerprint.
--   out: the carried decisions staged (verdicts_drop_carried.sql then takes their rows out of
--        {changed}: they are not judged by GX again).
-- Idempotent: the validate step resets its decisions and re-creates {changed} before this runs.
-- Sound because the carried rules are the suite's row-local ones, judged on the same content by
-- the same suite: Great Expectations would decide the same again.
insert into {decisions} (legacy_id, rule, detail)
select v.legacy_id, verdict.rule, verdict.detail
from migration.row_verdicts as v
join {changed} as c on c.{key}::bigint = v.legacy_id
cross join lateral unnest(v.rules, v.details) as verdict (rule, detail)
where v.entity = %(entity)s
    and v.suite_sha256 = %(suite_sha256)s
    and v.row_hash = {row_hash}
on conflict (legacy_id, rule) do nothing
