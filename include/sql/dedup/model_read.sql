-- dedup/model_read.sql
-- purpose: the stored linkage model of an entity, when it was estimated under the same method
--          (migration_ops.dedup.step.method_digest: spec, model settings, library versions).
-- parameters: %(entity)s, %(method)s.
-- idempotent: a read.
select model, trained_run_id
from migration.dedup_models
where entity = %(entity)s and method = %(method)s
