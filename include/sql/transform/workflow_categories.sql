-- transform/workflow_categories.sql
-- purpose: shape every staged dispatch_category row as a public.workflow_categories row (one
--          per category): name trimmed (a blank name is kept as null so the suite quarantines
--          the row: rule workflow_categories.name_present), parent kept as the raw legacy id;
--          load/workflow_categories__link_parent.sql links parent_id after the upsert, once every
--          category of the run exists (a parent may come later in the same load).
-- inputs: staging.workflow_categories__dispatch_category.
-- output: staging.workflow_categories__transformed, columns and types of
--         public.workflow_categories (minus id, parent_id and timestamps).
-- idempotent: reads only staged rows; drops and rebuilds its output; no ids, no now().

drop table if exists staging.workflow_categories__transformed;

create unlogged table staging.workflow_categories__transformed as
select
    c.id::integer as legacy_category_id,
    nullif(btrim(c.name), '')::text as name,
    c.parent_id::integer as legacy_parent_id,
    '{}'::jsonb as metadata
from staging.workflow_categories__dispatch_category as c;
