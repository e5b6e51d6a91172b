-- Record one pipeline step's start and end (migration_ops.step_timings).
--   in : %(run_id)s, %(entity)s ('' for a whole-phase step such as extract), %(step)s,
--        %(started_at)s, %(finished_at)s, %(succeeded)s.
--   out: the row of migration.step_timings for (run, entity, step).
-- Idempotent: an upsert on (run, entity, step): a retried step replaces its own row.
insert into migration.step_timings (run_id, entity, step, started_at, finished_at, succeeded)
values (%(run_id)s, %(entity)s, %(step)s, %(started_at)s, %(finished_at)s, %(succeeded)s)
on conflict (run_id, entity, step) do update set
    started_at = excluded.started_at,
    finished_at = excluded.finished_at,
    succeeded = excluded.succeeded
