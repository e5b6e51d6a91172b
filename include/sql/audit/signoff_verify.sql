-- The latest on-demand row-level proof of the whole target (verify_target, phase -1: verify.VERIFY_PHASE).
--   in : nothing.
--   out: run_id, status, snapshot_at, finished_at, entities, compared, matched, mismatched,
--        missing, unexpected (zero or one row).
-- Idempotent: a read-only query.
select r.run_id, r.status, r.snapshot_at, r.finished_at, count(v.entity),
    coalesce(sum(v.compared_rows), 0), coalesce(sum(v.matched_rows), 0),
    coalesce(sum(v.mismatched_rows), 0), coalesce(sum(v.missing_rows), 0),
    coalesce(sum(v.unexpected_rows), 0)
from migration.runs as r
left join migration.row_validation as v using (run_id)
where r.phase = -1 and r.dag_id = 'verify_target'
group by r.run_id, r.status, r.snapshot_at, r.finished_at, r.started_at
order by r.started_at desc
limit 1
