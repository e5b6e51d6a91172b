-- preflight/target_privileges.sql
-- purpose: every privilege the project needs on the target, whether the connecting role has it,
--          and why it is needed: one row each (privilege, granted, needed_for). What Supabase's
--          `postgres` role has is enough; superuser is never needed (docs/decisions/0006).
-- inputs: none; runs as the role the project connects as (airflow connection supabase_db).
-- idempotent: a read-only query.
with me as (
    select * from pg_catalog.pg_roles where rolname = current_user
),
checks (privilege, granted, needed_for) as (
    select 'CREATEDB', rolcreatedb or rolsuper,
           'backup verification restores every backup into a scratch database it creates and drops'
    from me
    union all
    select 'BYPASSRLS', rolbypassrls or rolsuper,
           'pg_dump runs with row_security off: tables under row level security that the role '
           || 'does not own (or that force it) are dumped only with BYPASSRLS'
    from me
    union all
    select 'CREATE on database ' || current_database(),
           has_database_privilege(current_database(), 'CREATE'),
           'creates schemas migration and staging (and auth, only where it is missing)'
    union all
    select 'TEMPORARY on database ' || current_database(),
           has_database_privilege(current_database(), 'TEMPORARY'),
           'restore mode keeps the views it recreates in a temporary table'
    union all
    select 'USAGE, CREATE on schema public',
           has_schema_privilege('public', 'USAGE') and has_schema_privilege('public', 'CREATE'),
           'creates the public tables, and restore mode drops and recreates them'
    union all
    select 'USAGE on schema auth',
           to_regnamespace('auth') is null or has_schema_privilege('auth', 'USAGE'),
           'row level security policies call auth.uid()'
    union all
    select 'CREATEROLE (only while anon, authenticated or service_role is missing)',
           (select rolcreaterole or rolsuper from me)
           or (select count(*) = 3 from pg_catalog.pg_roles
               where rolname in ('anon', 'authenticated', 'service_role')),
           'the compat layer creates the supabase api roles where they do not exist'
    union all
    select 'ownership of the tables in public and migration',
           not exists (
               select 1 from pg_catalog.pg_class as c
               where c.relnamespace in ('public'::regnamespace,
                                        coalesce(to_regnamespace('migration'), 0::oid))
                 and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
                 and not pg_has_role(current_user, c.relowner, 'USAGE')
                 and not exists (select 1 from pg_catalog.pg_depend as e
                                 where e.classid = 'pg_class'::regclass and e.objid = c.oid
                                   and e.deptype = 'e')
           ),
           'loads, rollbacks and restores alter, truncate and drop them: owned by the role '
           || '(or one whose privileges it has)'
)
select privilege, granted, needed_for from checks
