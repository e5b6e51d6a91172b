-- Sign-off figures per phase: its latest run, the reconciliation and the row-level comparison
-- of that run, and the latest verified backup of the phase.
--   in : nothing (reads the migration schema).
--   out: phase, run_id, status, snapshot_at, finished_at, entities, source, loaded, merged,
--        quarantined, balanced, compared, matched, mismatched, missing, unexpected,
--        backup_id (latest verified backup of the phase), open_quarantine (unresolved rows).
-- Idempotent: a read-only query.
with latest as (
    select distinct on (phase) run_id, phase, status, snapshot_at, finished_at
    from migration.runs
    where phase > 0
    order by phase, started_at desc
),
rec as (
    select run_id, count(*) as entities, sum(source_rows) as source, sum(loaded_rows) as loaded,
        sum(merged_rows) as merged, sum(quarantined_rows) as quarantined,
        bool_and(source_rows = loaded_rows + merged_rows + quarantined_rows) as balanced
    from migration.reconciliation group by run_id
),
rv as (
    select run_id, sum(compared_rows) as compared, sum(matched_rows) as matched,
        sum(mismatched_rows) as mismatched, sum(missing_rows) as missing,
        sum(unexpected_rows) as unexpected
    from migration.row_validation group by run_id
)
select l.phase, l.run_id, l.status, l.snapshot_at, l.finished_at,
    coalesce(rec.entities, 0), coalesce(rec.source, 0), coalesce(rec.loaded, 0),
    coalesce(rec.merged, 0), coalesce(rec.quarantined, 0), coalesce(rec.balanced, false),
    coalesce(rv.compared, 0), coalesce(rv.matched, 0), coalesce(rv.mismatched, 0),
    coalesce(rv.missing, 0), coalesce(rv.unexpected, 0),
    (select max(b.backup_id) from migration.backups as b
        where b.phase = l.phase and b.status = 'verified') as backup_id,
    (select count(*) from migration.quarantine as q
        where q.resolved_at is null and q.last_run_id = l.run_id) as open_quarantine
from latest as l
left join rec using (run_id)
left join rv using (run_id)
order by l.phase
