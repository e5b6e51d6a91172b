-- Record one run's quarantine decisions for an entity in the auditors' history.
--   in : {decisions} = staging.<entity>__quarantine (legacy_id, rule, detail), filled by the
--        validate and copy_objects steps; {evaluated} = the legacy ids this run evaluated;
--        settings migration.entity, migration.run_id, migration.resolve_all ('on' after a
--        full run: every open row of the entity is decided again; 'off' after a sync: only the
--        evaluated ids are, the rows outside its delta keep their entries).
--   out: migration.quarantine: a decision seen for the first time is added; one seen before is
--        refreshed (last_run_id, last_seen_at, detail) and un-resolved; an open row of the entity
--        that this run no longer holds back is resolved by this run.
-- Runs inside the load's transaction, so the history changes exactly when the rows load.
-- Idempotent: keyed by (entity, legacy_id, rule); a retried load writes the same state again.
with recorded as (
    insert into migration.quarantine as q
        (entity, legacy_id, rule, detail, first_run_id, last_run_id)
    select
        current_setting('migration.entity'), d.legacy_id, d.rule, d.detail,
        current_setting('migration.run_id'), current_setting('migration.run_id')
    from {decisions} as d
    on conflict (entity, legacy_id, rule) do update set
        detail = excluded.detail,
        last_run_id = excluded.last_run_id,
        last_seen_at = now(),
        resolved_at = null,
        resolved_run_id = null
    returning q.quarantine_id
)

update migration.quarantine as q
set resolved_at = now(), resolved_run_id = current_setting('migration.run_id')
where q.entity = current_setting('migration.entity')
    and q.resolved_at is null
    and q.quarantine_id not in (select r.quarantine_id from recorded as r)
    and (
        current_setting('migration.resolve_all') = 'on'
        or q.legacy_id in ({evaluated})
    )
