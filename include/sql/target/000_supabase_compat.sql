-- 000_supabase_compat.sql
-- purpose: make a plain postgresql database look enough like supabase for the target schema,
--          and create the helpers every later file uses (migration.new_id, try_jsonb, touch trigger).
-- applied: at the start of every phase dag run, before 010 and 100.
-- idempotent: every object is created only where missing (roles, auth schema and functions,
--             their grants: a real supabase project already has them, owned by supabase_admin
--             and supabase_auth_admin, and they must not be replaced there), or with "create or
--             replace" for the migration.* helpers this project owns. needs no superuser: on
--             supabase it runs as the project's `postgres` role (see docs/decisions/0006).

-- ---------------------------------------------------------------- supabase api roles
-- roles are cluster-wide: guard on pg_roles, and tolerate a concurrent creator.
do $$
declare
    role_name text;
begin
    foreach role_name in array array['anon', 'authenticated', 'service_role'] loop
        if not exists (select 1 from pg_roles where rolname = role_name) then
            begin
                if role_name = 'service_role' then
                    execute format('create role %I nologin noinherit bypassrls', role_name);
                else
                    execute format('create role %I nologin noinherit', role_name);
                end if;
            exception when duplicate_object or unique_violation then
                null;  -- created meanwhile by another session: fine
            end;
        end if;
    end loop;
end
$$;

-- ---------------------------------------------------------------- auth schema and helpers
-- on supabase the auth schema belongs to supabase_auth_admin: only create what is missing
-- (a guarded block, so no create privilege is even checked where the schema exists).
do $$
begin
    if to_regnamespace('auth') is null then
        create schema auth;
    end if;
end
$$;

do $$
begin
    -- same definitions as supabase's: claims come from the postgrest request settings.
    if to_regprocedure('auth.uid()') is null then
        execute $f$
            create function auth.uid() returns uuid
            language sql stable
            as $body$
                select coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
                )::uuid
            $body$
        $f$;
        comment on function auth.uid() is 'supabase compat: the caller''s user id from the jwt (sub claim).';
    end if;

    if to_regprocedure('auth.role()') is null then
        execute $f$
            create function auth.role() returns text
            language sql stable
            as $body$
                select coalesce(
                    nullif(current_setting('request.jwt.claim.role', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
                )::text
            $body$
        $f$;
        comment on function auth.role() is 'supabase compat: the caller''s role from the jwt (role claim).';
    end if;

    if to_regprocedure('auth.jwt()') is null then
        execute $f$
            create function auth.jwt() returns jsonb
            language sql stable
            as $body$
                select coalesce(
                    nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), '')
                )::jsonb
            $body$
        $f$;
        comment on function auth.jwt() is 'supabase compat: the caller''s decoded jwt claims.';
    end if;
end
$$;

-- the api roles' access to the helpers: granted only where missing. on supabase it exists, and
-- the project's role (not the owner of auth) could not grant it anyway: a blind grant there
-- only warns "no privileges were granted".
do $$
declare
    api_role text;
    helper regprocedure;
begin
    foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
        if not has_schema_privilege(api_role, 'auth', 'usage') then
            execute format('grant usage on schema auth to %I', api_role);
        end if;
        foreach helper in array array['auth.uid()', 'auth.role()', 'auth.jwt()']::regprocedure[] loop
            if not has_function_privilege(api_role, helper, 'execute') then
                execute format('grant execute on function %s to %I', helper, api_role);
            end if;
        end loop;
    end loop;
end
$$;

-- ---------------------------------------------------------------- extensions
-- pgcrypto is standard on supabase. gen_random_uuid() is core since postgresql 13, so the
-- schema does not depend on the extension: create it only where the server ships it (the
-- embedded test server does not).
do $$
begin
    if exists (select 1 from pg_available_extensions where name = 'pgcrypto') then
        create extension if not exists pgcrypto;
    else
        raise notice 'pgcrypto is not available on this server; using core gen_random_uuid()';
    end if;
end
$$;

-- ---------------------------------------------------------------- migration schema helpers
-- the schema's tables are 010_migration_schema.sql's; here only the helpers 100 needs.
create schema if not exists migration;
-- service_role inserts rows whose id default calls migration.new_id(): it needs the schema.
grant usage on schema migration to service_role;

-- migration.new_id(): time-ordered uuidv7 where the server has it (postgresql 18+), random
-- uuid v4 otherwise. decided once here, so the per-row call has no branch.
do $$
begin
    if to_regprocedure('pg_catalog.uuidv7()') is not null then
        execute $f$
            create or replace function migration.new_id() returns uuid
            language sql volatile parallel safe
            as 'select pg_catalog.uuidv7()'
        $f$;
    else
        execute $f$
            create or replace function migration.new_id() returns uuid
            language sql volatile parallel safe
            as 'select pg_catalog.gen_random_uuid()'
        $f$;
    end if;
end
$$;
comment on function migration.new_id() is
    'primary key default: uuidv7() on postgresql 18+, gen_random_uuid() before (chosen when 000 is applied).';

-- migration.try_jsonb(text): the value as jsonb, or null when it is not valid json.
-- exception handling instead of pg_input_is_valid() so it works on every supported version.
create or replace function migration.try_jsonb(value text) returns jsonb
language plpgsql immutable strict parallel safe
as $$
begin
    return value::jsonb;
exception
    -- 22xxx: invalid json syntax, bad unicode escapes (\u0000); 54xxx: nesting too deep.
    when data_exception or program_limit_exceeded then
        return null;
end
$$;
comment on function migration.try_jsonb(text) is
    'parse text as jsonb; null when it is not valid json (the caller keeps the raw text).';

-- migration.touch_updated_at(): before-update trigger keeping updated_at current, and only
-- when the row really changes (a no-op update keeps the previous timestamp).
create or replace function migration.touch_updated_at() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'UPDATE' and new is not distinct from old then
        return new;
    end if;
    new.updated_at := now();
    return new;
end
$$;
comment on function migration.touch_updated_at() is
    'before insert/update trigger: set updated_at = now() when the row changes.';
