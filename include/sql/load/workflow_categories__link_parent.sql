-- load/workflow_categories__link_parent.sql
-- purpose: resolve each migrated category's parent into parent_id once every category of the
--          run exists: the category whose legacy_category_id = legacy_parent_id. a parent that
--          is not in the target (quarantined, missing) leaves parent_id null while the raw id
--          stays, so a later run links it; a parent that went away clears the link.
-- runs: after the workflow_categories upsert, in the same transaction (post_load_sql).
-- idempotent: set-based; only rows whose resolved parent differs are updated, so a rerun
--             updates nothing. categories created outside the migration are never touched.

with resolved as (
    select c.id, parent.id as parent_id
    from public.workflow_categories as c
    left join public.workflow_categories as parent
        on parent.legacy_category_id = c.legacy_parent_id
    where c.legacy_category_id is not null
)

update public.workflow_categories as c
set parent_id = r.parent_id
from resolved as r
where r.id = c.id and c.parent_id is distinct from r.parent_id;
