-- dedup/model_record.sql
-- purpose: keep the linkage model a run estimated (Splink's settings as json: comparisons,
--          lambda, m and u probabilities; parameters of the population, no record value), so
--          the nightly sync applies it instead of sampling a million random pairs again.
-- runs: in the transaction of dedup/record.sql: the model commits with the clusters it made.
-- parameters: %(entity)s, %(method)s, %(model)s (jsonb), %(run_id)s, %(candidates)s.
-- idempotent: one row per entity, replaced.
insert into migration.dedup_models as m
    (entity, method, model, trained_run_id, trained_candidates, trained_at)
values (%(entity)s, %(method)s, %(model)s, %(run_id)s, %(candidates)s, now())
on conflict (entity) do update set
    method = excluded.method,
    model = excluded.model,
    trained_run_id = excluded.trained_run_id,
    trained_candidates = excluded.trained_candidates,
    trained_at = excluded.trained_at
