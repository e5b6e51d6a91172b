-- rollback/count_entity_rows.sql
-- purpose: how many rows a rollback of the entity's phase would delete (the plan, and the
--          check that refuses to roll back phase N while a later phase still has rows).
-- inputs: identifiers {target} (entity target table), {key} (its legacy id column);
--         setting migration.rollback_all_rows ('true': every row, see EntitySpec.rollback).
-- idempotent: read only.
select count(*)
from {target}
where {key} is not null
   or current_setting('migration.rollback_all_rows')::boolean
