-- Record the suite's row-local verdicts of the rows this pass judged, for the next run to carry.
--   in : {judged} the rows GX judged (__changed, or __transformed when it judged every row),
--        {decisions} the staged decisions of the suite's row-level expectations (made by this
--        pass: nothing else has staged any yet), {key}, {row_hash} over {judged}'s mapped
--        columns (alias t), %(entity)s, %(suite_sha256)s, %(run_id)s, %(local_rules)s the
--        rules of the suite's row-local, row-level expectations (only their verdicts depend on
--        the row alone; one with `mostly` depends on every row).
--   out: migration.row_verdicts: an entry per judged row that failed (after
--        verdicts_forget.sql removed the judged rows' old entries).
-- Idempotent: keyed by (entity, legacy_id); a retried validate writes the same entries.
insert into migration.row_verdicts
    (entity, legacy_id, suite_sha256, row_hash, rules, details, judged_run_id)
select
    %(entity)s, t.{key}::bigint, %(suite_sha256)s, {row_hash},
    array_agg(d.rule order by d.rule), array_agg(d.detail order by d.rule), %(run_id)s
from {judged} as t
join {decisions} as d on d.legacy_id = t.{key}::bigint and d.rule = any(%(local_rules)s)
group by t.{key}, {row_hash}
on conflict (entity, legacy_id) do update set
    suite_sha256 = excluded.suite_sha256, row_hash = excluded.row_hash, rules = excluded.rules,
    details = excluded.details, judged_run_id = excluded.judged_run_id, judged_at = now()
