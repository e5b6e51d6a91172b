-- rollback/restore_prepare.sql
-- purpose: empty the public schema so `pg_restore --schema=public` can recreate it exactly as a
--          verified backup holds it: every table, view, sequence, routine and type in public is
--          dropped; extension members and the schema itself (owner, grants) stay.
--          Views in other schemas built on public (e.g. migration.legacy_patient_profile, phase
--          2's lookup view) would go with the cascade: their definitions, owners, comments and
--          grants are saved first (temp table restore_dependent_views) and restore_finish.sql
--          recreates them over the restored tables. Any other object outside public that
--          depends on public makes this refuse. The migration schema's tables (history,
--          manifest) are not touched; staging is scratch space the next run rebuilds, so a
--          column there that uses a public type may go with the type.
--          The connecting role's own default privileges (on Supabase `postgres` grants all on
--          new tables, sequences and functions in public to anon, authenticated, service_role)
--          would add grants to every restored object that the dump, whose grants are written
--          relative to the built-in defaults, never revokes: they are suspended here (temp
--          table restore_suspended_defaults) and put back by restore_finish.sql, so the
--          restored objects carry exactly the backup's grants. No other role's defaults apply
--          to what this role creates; none needs superuser.
-- inputs: none. psql runs this file, the restore script and restore_finish.sql in ONE
--         transaction (--single-transaction, ON_ERROR_STOP): any failure leaves all as it was.
-- idempotent: drops only what exists; on an empty public schema it does nothing.

-- Every name rendered below (view definitions, regclass, regprocedure, regtype) comes out
-- schema-qualified, as the restore script runs with an empty search_path.
set local search_path = pg_catalog;

-- The connecting role's default privileges in public, and its global ones beyond the built-in
-- defaults (which the dump's grants are written against): suspended until restore_finish.sql.
create temp table restore_suspended_defaults on commit drop as
select d.defaclobjtype as objtype,
       d.defaclnamespace <> 0 as in_public,
       a.grantee,
       a.privilege_type,
       a.is_grantable
from pg_default_acl as d
cross join lateral aclexplode(d.defaclacl) as a
where d.defaclrole = (select oid from pg_roles where rolname = current_user)
  and d.defaclnamespace in (0, 'public'::regnamespace)
  and (d.defaclnamespace <> 0
       or (a.grantee, a.privilege_type) not in (
           select b.grantee, b.privilege_type
           from aclexplode(acldefault(case d.defaclobjtype when 'S' then 's' else d.defaclobjtype end,
                                      d.defaclrole)) as b));

do $$
declare
    suspended record;
begin
    for suspended in select * from pg_temp.restore_suspended_defaults loop
        execute format('alter default privileges for role %I%s revoke %s on %s from %s',
                       current_user,
                       case when suspended.in_public then ' in schema public' else '' end,
                       suspended.privilege_type,
                       case suspended.objtype
                           when 'r' then 'tables' when 'S' then 'sequences'
                           when 'f' then 'functions' when 'T' then 'types'
                           when 'n' then 'schemas' else 'large objects'
                       end,
                       case suspended.grantee when 0 then 'public'
                           else quote_ident(pg_get_userbyid(suspended.grantee)) end);
    end loop;
end
$$;

-- Views outside public (and staging) that depend, directly or through each other, on public
-- objects; depth orders their recreation. Temp: lives and dies with this transaction.
create temp table restore_dependent_views on commit drop as
with recursive public_objects as (
    select oid, 'pg_class'::regclass as catalog from pg_class where relnamespace = 'public'::regnamespace
    union all
    select oid, 'pg_type'::regclass from pg_type where typnamespace = 'public'::regnamespace
    union all
    select oid, 'pg_proc'::regclass from pg_proc where pronamespace = 'public'::regnamespace
),
views (view_oid, depth) as (
    select distinct r.ev_class, 1
    from pg_depend as d
    join public_objects as o on o.oid = d.refobjid and o.catalog = d.refclassid
    join pg_rewrite as r on r.oid = d.objid
    join pg_class as v on v.oid = r.ev_class
    where d.classid = 'pg_rewrite'::regclass
      and v.relkind = 'v'
      and v.relnamespace not in ('public'::regnamespace, coalesce(to_regnamespace('staging'), 0::oid))
    union
    select r.ev_class, views.depth + 1
    from views
    join pg_depend as d on d.refobjid = views.view_oid and d.refclassid = 'pg_class'::regclass
    join pg_rewrite as r on r.oid = d.objid and d.classid = 'pg_rewrite'::regclass
    join pg_class as v on v.oid = r.ev_class
    where r.ev_class <> views.view_oid and views.depth < 20
      and v.relnamespace not in ('public'::regnamespace, coalesce(to_regnamespace('staging'), 0::oid))
)
select v.oid as view_oid,
       max(views.depth) as depth,
       format('%I.%I', n.nspname, v.relname) as name,
       format('create view %I.%I%s as %s', n.nspname, v.relname,
              coalesce(' with (' || array_to_string(v.reloptions, ', ') || ')', ''),
              pg_get_viewdef(v.oid)) as definition,
       pg_get_userbyid(v.relowner) as owner,
       obj_description(v.oid, 'pg_class') as description,
       v.relacl::text[] as acl
from views
join pg_class as v on v.oid = views.view_oid
join pg_namespace as n on n.oid = v.relnamespace
group by v.oid, n.nspname, v.relname;

do $$
declare
    blocking text;
    statements text[];
    statement text;
begin
    -- Other objects outside public (and staging) that depend on public objects would silently
    -- go with the cascade; refuse instead and name them.
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
      -- the saved views are recreated by restore_finish.sql
      and not (d.classid = 'pg_rewrite'::regclass
               and (select r.ev_class from pg_rewrite as r where r.oid = d.objid)
                   in (select view_oid from pg_temp.restore_dependent_views))
      and not exists (
          select 1 from pg_depend as e
          where e.classid = d.refclassid and e.objid = d.refobjid and e.deptype = 'e'
      );
    if blocking is not null then
        raise exception 'restore refused: objects outside schema public depend on it: %', blocking
            using errcode = 'dependent_objects_still_exist';
    end if;

    -- Names are rendered before anything is dropped: a cascade may remove later entries
    -- (a table's sequence, a partition, a saved view), which "if exists" then skips.
    select array_agg(format('drop view if exists %s cascade', name) order by depth desc)
    into statements
    from pg_temp.restore_dependent_views;

    select statements || array_agg(format('drop %s if exists %s cascade',
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
