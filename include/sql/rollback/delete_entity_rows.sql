-- rollback/delete_entity_rows.sql
-- purpose: remove exactly the rows the entity loaded: those carrying a legacy id (rows created
--          by anything else have none and stay), or every row for tables the phase's schema
--          seeds again on its next run (EntitySpec.rollback.all_rows).
-- inputs: identifiers {target}, {key}; setting migration.rollback_all_rows ('true'/'false').
-- idempotent: a second run finds nothing left to delete. One set-based statement, in the
--             entity's own transaction (children were deleted before, in their own).
delete from {target}
where {key} is not null
   or current_setting('migration.rollback_all_rows')::boolean
