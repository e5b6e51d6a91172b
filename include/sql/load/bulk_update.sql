-- Bulk path, second half: rewrite the target rows whose mapped columns differ from the
-- validated rows (only on a requested bulk load of a table that already holds rows).
--   in : {validated}, {target}, {conflict_key}, {assignments} (col = s.col), {target_columns}
--        and {source_columns} (the mapped columns, for the comparison).
--   out: the number of rows updated (the statement's row count).
-- Idempotent: the same comparison as upsert.sql's anti-join, so identical rows are not written
-- and a rerun updates nothing.
update {target} as t
set {assignments}
from {validated} as s
where t.{conflict_key} = s.{conflict_key}
    and ({target_columns}) is distinct from ({source_columns})
