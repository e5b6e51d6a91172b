-- Time per step and entity of one run, as each step recorded its own start and end
-- (migration.step_timings): right when entities run in parallel, unlike gaps between
-- checkpoints.
--   in : %(run_id)s.
--   out: entity ('' for the phase's extract), step, start (seconds after the run's first
--        recorded step), seconds (its duration), succeeded; ordered by start.
-- Idempotent: a read-only query.
select t.entity, t.step,
    extract(epoch from t.started_at - min(t.started_at) over ())::float8 as start_seconds,
    extract(epoch from t.finished_at - t.started_at)::float8 as seconds,
    t.succeeded
from migration.step_timings as t
where t.run_id = %(run_id)s
order by t.started_at, t.entity, t.step
