-- What the bulk path sets aside while it inserts: the target table's secondary indexes, its
-- primary key and unique constraints when no foreign key depends on them, and its own foreign
-- keys.
--   in : %(target)s = the target table ('schema.table').
--   out: one row per object (kind, name, definition, comment, referenced), in the order they are
--        re-created: keys (primary, unique), then indexes, then foreign keys by referenced table
--        (every bulk load takes its referenced tables' locks in the same order: no deadlock).
-- Read-only; definitions come from the server (pg_get_indexdef / pg_get_constraintdef), so what
-- is re-created is exactly what was dropped. Stays: a key other tables' foreign keys depend
-- on, an index that is a replica identity, the primary key of a table in a publication
-- (Supabase Realtime: its updates need the key as replica identity), and whatever a
-- partition inherits from its parent (it cannot be dropped on the partition alone).
with target as (
    select
        %(target)s::regclass as oid,
        exists (select 1 from pg_publication where puballtables)
        or exists (
            select 1 from pg_publication_rel where prrelid = %(target)s::regclass
        ) as published
),

keys as (
    select 'key'::text as kind, c.conname::text as name,
           pg_get_constraintdef(c.oid) as definition,
           obj_description(c.oid, 'pg_constraint') as comment,
           null::text as referenced, 1 as position
    from pg_constraint as c
    join pg_index as i on i.indexrelid = c.conindid
    cross join target
    where c.conrelid = target.oid and c.contype in ('p', 'u') and not i.indisreplident
        and c.conparentid = 0 and not (c.contype = 'p' and target.published)
        and not exists (
            select 1 from pg_constraint as f where f.contype = 'f' and f.conindid = c.conindid
        )
),

indexes as (
    select 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
           obj_description(i.indexrelid, 'pg_class'), null, 2
    from pg_index as i, target
    where i.indrelid = target.oid and not i.indisreplident
        and not exists (select 1 from pg_constraint as c where c.conindid = i.indexrelid)
        and not exists (select 1 from pg_inherits as p where p.inhrelid = i.indexrelid)
),

foreign_keys as (
    select 'foreign_key', c.conname::text, pg_get_constraintdef(c.oid),
           obj_description(c.oid, 'pg_constraint'), c.confrelid::regclass::text, 3
    from pg_constraint as c, target
    where c.conrelid = target.oid and c.contype = 'f' and c.conparentid = 0
)

select kind, name, definition, comment, referenced
from (
    select * from keys
    union all select * from indexes
    union all select * from foreign_keys
) as deferred
order by position, referenced nulls first, name
