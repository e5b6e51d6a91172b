-- Which validated rows break one foreign key of the target table: the per-row report of a
-- foreign-key violation (bulk or upsert path), by legacy id only.
--   in : {validated} staged rows, {key} their legacy id column, {columns} the constrained columns
--        of the staged rows, {referenced} table and {referenced_columns}; %(limit)s ids at most.
--   out: (legacy id) of each row whose non-null foreign-key value has no referenced row.
-- Read-only (run after the failed load rolled back).
select s.{key}
from {validated} as s
where ({columns}) is not null
    and not exists (
        select 1 from {referenced} as r where ({referenced_columns}) = ({columns})
    )
order by s.{key}
limit %(limit)s
