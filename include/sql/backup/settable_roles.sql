-- backup/settable_roles.sql
-- purpose: the roles whose default privileges the connecting role may set, and so restore from
--          a dump: ALTER DEFAULT PRIVILEGES FOR ROLE r needs the right to SET ROLE r
--          (postgresql 16+; membership before). On Supabase the project's `postgres` role is
--          not a member of supabase_admin, whose default privileges in public every dump holds.
-- inputs: none.
-- idempotent: a read-only query.
select r.rolname
from pg_catalog.pg_roles as r
where case
          when current_setting('server_version_num')::int >= 160000
              then pg_catalog.pg_has_role(current_user, r.oid, 'SET')
          else pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')
      end
order by r.rolname
