-- Bulk path, first half: insert the validated rows the target does not hold yet, without
-- ON CONFLICT, while the table's secondary indexes and foreign keys are set aside.
--   in : {validated} staged rows, {target} table, {conflict_key} unique column, {columns};
--        before them the generated uuid keys (bulk_generated_keys.sql) and their values
--        (bulk_key_value.sql), each followed by a comma, when the table has such keys.
--   out: the number of rows inserted (the statement's row count).
-- Idempotent: a row whose key is already in the target is left to bulk_update.sql, so a rerun
-- inserts nothing; the whole bulk load is one transaction (a kill leaves the table as it was).
insert into {target} ({key_columns}{columns})
select {key_values}{columns}
from {validated} as s
where not exists (
    select 1 from {target} as t where t.{conflict_key} = s.{conflict_key}
)
