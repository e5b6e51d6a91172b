-- supabase_shape/database.sql
-- purpose: give a new database what a Supabase project's database has before any user schema:
--          the `extensions`, `auth` and `storage` schemas owned by supabase_admin, extensions
--          installed by supabase_admin (pg_trgm, trusted; vector and pg_stat_statements, which
--          a non-superuser may not create itself), Supabase's auth helpers auth.uid(), role(),
--          email(), jwt() owned by supabase_auth_admin, the API roles' grants, and the default
--          privileges Supabase sets in public: supabase_admin's (only a member of
--          supabase_admin can restore or change those) and the connecting role's own.
-- inputs: none; needs supabase_shape/roles.sql. Run by the embedded server's superuser in a
--         database owned by supabase_postgres (as Supabase's database is owned by postgres).
-- idempotent: schemas and extensions "if not exists"; the auth functions are created only
--             where missing (a rerun must not change them: tests compare them byte for byte);
--             grants and default privileges repeat without effect.
set local role supabase_admin;

-- ---------------------------------------------------------------- public
grant usage on schema public to supabase_postgres, anon, authenticated, service_role;
-- objects supabase_admin (dashboard, integrations) creates in public reach every API role.
alter default privileges for role supabase_admin in schema public
    grant all on tables to supabase_postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
    grant all on sequences to supabase_postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
    grant all on functions to supabase_postgres, anon, authenticated, service_role;
-- and what the project's role creates there too: grants are revoked per table, RLS decides rows.
alter default privileges for role supabase_postgres in schema public
    grant all on tables to anon, authenticated, service_role;
alter default privileges for role supabase_postgres in schema public
    grant all on sequences to anon, authenticated, service_role;
alter default privileges for role supabase_postgres in schema public
    grant all on functions to anon, authenticated, service_role;

-- ---------------------------------------------------------------- extensions
create schema if not exists extensions authorization supabase_admin;
grant usage on schema extensions to supabase_postgres, anon, authenticated, service_role;
create extension if not exists pg_trgm with schema extensions;
create extension if not exists vector with schema extensions;
create extension if not exists pg_stat_statements with schema extensions;

-- ---------------------------------------------------------------- auth
create schema if not exists auth authorization supabase_admin;
grant usage on schema auth to supabase_postgres, anon, authenticated, service_role;
grant all on schema auth to supabase_auth_admin;

do $$
begin
    -- claims come from the request settings PostgREST sets from the caller's JWT.
    if to_regprocedure('auth.uid()') is null then
        create function auth.uid() returns uuid language sql stable as $body$
            select coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
            )::uuid
        $body$;
        comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
    end if;
    if to_regprocedure('auth.role()') is null then
        create function auth.role() returns text language sql stable as $body$
            select coalesce(
                nullif(current_setting('request.jwt.claim.role', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
            )::text
        $body$;
        comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
    end if;
    if to_regprocedure('auth.email()') is null then
        create function auth.email() returns text language sql stable as $body$
            select coalesce(
                nullif(current_setting('request.jwt.claim.email', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
            )::text
        $body$;
        comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';
    end if;
    if to_regprocedure('auth.jwt()') is null then
        create function auth.jwt() returns jsonb language sql stable as $body$
            select coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
            )::jsonb
        $body$;
    end if;
end
$$;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
    to supabase_postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------- storage
create schema if not exists storage authorization supabase_admin;
grant usage on schema storage to supabase_postgres, anon, authenticated, service_role;
grant all on schema storage to supabase_storage_admin;
