-- The transformed rows that would change the target: no target row with their key, or one whose
-- mapped columns differ. Only these go through the Great Expectations suite on a rerun or a
-- sync; the others are in the target exactly as transformed and passed the suite when loaded.
--   in : {changed} table to create, {transformed} staged rows, {target} table, {key} the upsert
--        key, {target_columns}/{source_columns} the mapped columns (as the load compares them).
--   out: {changed}, an unlogged staging table of the same shape as {transformed}.
-- Idempotent: dropped and re-created by the validate step; the same comparison as
-- include/sql/load/upsert.sql, so what is validated is exactly what the load would write.
create unlogged table {changed} as
select s.*
from {transformed} as s
where not exists (
    select 1
    from {target} as t
    where t.{key} = s.{key}
        and ({target_columns}) is not distinct from ({source_columns})
)
