-- supabase_shape/roles.sql
-- purpose: the cluster-wide roles of a Supabase project, for the local Supabase-shaped target
--          (tests, demo). Written from Supabase's documented roles, not copied from its scripts:
--          supabase_admin (superuser; owns auth, storage, extensions), supabase_auth_admin and
--          supabase_storage_admin (own what GoTrue and Storage create), the API roles anon,
--          authenticated, service_role (bypassrls), authenticator, and supabase_postgres: the
--          stand-in for Supabase's `postgres` role (the embedded server's superuser is already
--          called postgres), with the attributes and memberships Supabase gives `postgres`:
--          nosuperuser createdb createrole replication bypassrls; anon, authenticated and
--          service_role with admin option; pg_read_all_data, pg_signal_backend, pg_monitor.
-- inputs: none. Run by the embedded server's superuser (migration_ops.local_env), never by the
--         project against a real target.
-- idempotent: each role is created only where missing (tolerating a concurrent creator);
--             attributes are set again and grants repeated, which changes nothing.
do $$
declare
    wanted record;
begin
    for wanted in
        select * from (values
            ('supabase_admin', 'nologin superuser createdb createrole replication bypassrls'),
            ('supabase_auth_admin', 'nologin noinherit createrole noreplication'),
            ('supabase_storage_admin', 'nologin noinherit createrole noreplication'),
            ('anon', 'nologin noinherit'),
            ('authenticated', 'nologin noinherit'),
            ('service_role', 'nologin noinherit bypassrls'),
            ('authenticator', 'nologin noinherit'),
            ('supabase_postgres',
             'login inherit nosuperuser createdb createrole replication bypassrls')
        ) as r (name, attributes)
    loop
        if not exists (select 1 from pg_roles where rolname = wanted.name) then
            begin
                execute format('create role %I', wanted.name);
            exception when duplicate_object or unique_violation then
                null;  -- created meanwhile by another session: fine
            end;
        end if;
        execute format('alter role %I %s', wanted.name, wanted.attributes);
    end loop;
end
$$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to supabase_postgres with admin option;
grant pg_read_all_data, pg_signal_backend, pg_monitor to supabase_postgres;
