-- Upsert one entity's validated rows into its target table: new or changed rows only.
--   in : {validated} staged rows (target-shaped), {target} table, {conflict_key} unique column,
--        {columns}/{source_columns}/{target_columns}/{assignments} composed from the staged columns.
--   out: one row (inserted, updated).
-- Idempotent: rows already identical in the target are filtered out by the anti-join before
-- the upsert (comparing only the mapped columns, so ids and timestamps do not count), so a
-- rerun writes nothing and ON CONFLICT never has to lock and rewrite unchanged rows.
with changed as (
    select {columns}
    from {validated} as s
    where not exists (
        select 1
        from {target} as t
        where t.{conflict_key} = s.{conflict_key}
            and ({target_columns}) is not distinct from ({source_columns})
    )
),

upserted as (
    insert into {target} as t ({columns})
    select {columns} from changed
    on conflict ({conflict_key}) do update set {assignments}
    returning (xmax = 0) as inserted
)

select
    count(*) filter (where inserted) as inserted,
    count(*) filter (where not inserted) as updated
from upserted
