-- expect_column_values_to_be_unique over a whole entity, set-based: rows whose value occurs
-- more than once (GX's unexpected_count for the same expectation; nulls are not duplicates).
--   in : {table} the staged table (all transformed rows), {column} the column.
--   out: one row: the number of rows with a duplicated value.
-- Read-only. The usual answer (no duplicate) comes from one sorted distinct count; only when
-- there are duplicates does the grouped count (evaluated lazily, in the case branch) run.
with surplus as (
    select count({column}) - count(distinct {column}) as n from {table}
)

select
    case
        when surplus.n = 0 then 0
        else (
            select coalesce(sum(duplicated.n), 0)
            from (
                select count(*) as n from {table} where {column} is not null
                group by {column} having count(*) > 1
            ) as duplicated
        )
    end
from surplus
