-- rollback/restore_prepare.sql
-- purpose: empty the public schema so `pg_restore --schema=public` can recreate it exactly as a
--          verified backup holds it: every table, view, sequence, routine and type in public is
--          dropped; extension members and the schema itself (owner, grants) stay. The migration
--          schema (history, manifest) is not touched; staging is scratch space that the next
--          run rebuilds, so columns there that use a public type may go with the type.
-- inputs: none. psql runs this file and the restore script in ONE transaction
--         (--single-transaction, ON_ERROR_STOP): any failure leaves public as it was.
-- idempotent: drops only what exists; on an empty public schema it does nothing.
do $$
declare
    blocking text;
    statements text[];
    statement text;
begin
    -- Render every name schema-qualified (regclass, regprocedure, regtype below).
    perform set_config('search_path', 'pg_catalog', true);

    -- Objects outside public (and staging) that depend on public objects would silently go
    -- with the cascade; refuse instead and name them.
    select string_agg(distinct pg_describe_object(d.classid, d.objid, d.objsubid), ', ')
    into blocking
    from pg_depend as d
    where d.deptype in ('n', 'a')
      and case d.refclassid
              when 'pg_class'::regclass then (select relnamespace from pg_class where oid = d.refobjid)
              when 'pg_type'::regclass then (select typnamespace from pg_type where oid = d.refobjid)
              when 'pg_proc'::regclass then (select pronamespace from pg_proc where oid = d.refobjid)
          end = 'public'::regnamespace
      -- rules, defaults, triggers and policies have no schema of their own: use their table's.
      and coalesce(case d.classid
              when 'pg_rewrite'::regclass then
                  (select c.relnamespace from pg_rewrite as r join pg_class as c on c.oid = r.ev_class
                   where r.oid = d.objid)
              when 'pg_attrdef'::regclass then
                  (select c.relnamespace from pg_attrdef as a join pg_class as c on c.oid = a.adrelid
                   where a.oid = d.objid)
              when 'pg_trigger'::regclass then
                  (select c.relnamespace from pg_trigger as g join pg_class as c on c.oid = g.tgrelid
                   where g.oid = d.objid)
              when 'pg_policy'::regclass then
                  (select c.relnamespace from pg_policy as o join pg_class as c on c.oid = o.polrelid
                   where o.oid = d.objid)
              else to_regnamespace((pg_identify_object(d.classid, d.objid, 0)).schema)
          end, 'public'::regnamespace)
          not in ('public'::regnamespace, coalesce(to_regnamespace('staging'), 0::oid))
      and not exists (
          select 1 from pg_depend as e
          where e.classid = d.refclassid and e.objid = d.refobjid and e.deptype = 'e'
      );
    if blocking is not null then
        raise exception 'restore refused: objects outside schema public depend on it: %', blocking
            using errcode = 'dependent_objects_still_exist';
    end if;

    -- Names are rendered before anything is dropped: a cascade may remove later entries
    -- (a table's sequence, a partition), which "if exists" then skips.
    select array_agg(format('drop %s if exists %s cascade',
                      case c.relkind
                          when 'v' then 'view'
                          when 'm' then 'materialized view'
                          when 'f' then 'foreign table'
                          when 'S' then 'sequence'
                          else 'table'
                      end,
                      c.oid::regclass)
                     order by c.relkind in ('v', 'm') desc, c.oid)
    into statements
    from pg_class as c
    where c.relnamespace = 'public'::regnamespace
      and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      and not exists (
          select 1 from pg_depend as e
          where e.classid = 'pg_class'::regclass and e.objid = c.oid and e.deptype = 'e'
      );

    select statements || array_agg(format('drop routine if exists %s cascade', p.oid::regprocedure))
    into statements
    from pg_proc as p
    where p.pronamespace = 'public'::regnamespace
      and not exists (
          select 1 from pg_depend as e
          where e.classid = 'pg_proc'::regclass and e.objid = p.oid and e.deptype = 'e'
      );

    select statements || array_agg(format('drop %s if exists %s cascade',
                                          case t.typtype when 'd' then 'domain' else 'type' end,
                                          t.oid::regtype))
    into statements
    from pg_type as t
    where t.typnamespace = 'public'::regnamespace
      and (t.typtype in ('e', 'd', 'r')
           or (t.typtype = 'c'
               and (select c.relkind from pg_class as c where c.oid = t.typrelid) = 'c'))
      and not exists (
          select 1 from pg_depend as e
          where e.classid = 'pg_type'::regclass and e.objid = t.oid and e.deptype = 'e'
      );

    foreach statement in array coalesce(statements, '{}') loop
        execute statement;
    end loop;
end
$$;
