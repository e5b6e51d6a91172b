-- expect_column_values_to_be_unique over a whole entity, set-based: rows whose value occurs
-- more than once (GX's unexpected_count for the same expectation; nulls are not duplicates).
--   in : {table} the staged table (all transformed rows), {column} the column.
--   out: one row: the number of rows with a duplicated value.
-- Read-only.
select count(*)
from {table}
where {column} in (
    select {column} from {table} where {column} is not null group by {column} having count(*) > 1
)
