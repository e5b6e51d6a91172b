-- rollback/restore_finish.sql
-- purpose: recreate the views outside public that restore_prepare.sql saved and dropped (views
--          other schemas build on public tables), over the tables the restore put back: same
--          definition, options, owner, comment and grants; then give the connecting role back
--          the default privileges restore_prepare.sql suspended.
-- inputs: temp tables restore_dependent_views and restore_suspended_defaults
--         (restore_prepare.sql), in the same transaction.
-- idempotent: runs once per restore transaction; the temp table is dropped at commit. A view
--             that no longer compiles against the restored tables fails the whole restore
--             (nothing changes) and is named in the error.
do $$
declare
    saved record;
    grant_ record;
begin
    for saved in select * from pg_temp.restore_dependent_views order by depth loop
        begin
            execute saved.definition;
        exception when others then
            raise exception 'restore: view % cannot be recreated over the restored tables (%)',
                saved.name, sqlstate;
        end;
        if saved.owner <> current_user then
            execute format('alter view %s owner to %I', saved.name, saved.owner);
        end if;
        if saved.description is not null then
            execute format('comment on view %s is %L', saved.name, saved.description);
        end if;
        if saved.acl is not null then
            execute format('revoke all on %s from public', saved.name);
            for grant_ in
                select a.privilege_type, a.is_grantable,
                       case a.grantee when 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end
                           as grantee
                from aclexplode(saved.acl::aclitem[]) as a
                where a.grantee <> (select oid from pg_roles where rolname = saved.owner)
            loop
                execute format('grant %s on %s to %s%s', grant_.privilege_type, saved.name,
                               grant_.grantee,
                               case when grant_.is_grantable then ' with grant option' else '' end);
            end loop;
        end if;
    end loop;
end
$$;

-- the connecting role's default privileges, as they were before the restore.
do $$
declare
    suspended record;
begin
    for suspended in select * from pg_temp.restore_suspended_defaults loop
        execute format('alter default privileges for role %I%s grant %s on %s to %s%s',
                       current_user,
                       case when suspended.in_public then ' in schema public' else '' end,
                       suspended.privilege_type,
                       case suspended.objtype
                           when 'r' then 'tables' when 'S' then 'sequences'
                           when 'f' then 'functions' when 'T' then 'types'
                           when 'n' then 'schemas' else 'large objects'
                       end,
                       case suspended.grantee when 0 then 'public'
                           else quote_ident(pg_get_userbyid(suspended.grantee)) end,
                       case when suspended.is_grantable then ' with grant option' else '' end);
    end loop;
end
$$;
