-- ai/dify_plan.sql
-- purpose: what the Dify sync of one entity must do, per legacy id: 'create' (text, no
--          document), 'update' (document whose content hash differs), 'delete' (document whose
--          row is gone, marked legacy_removed_at by the sync, or has no text any more);
--          unchanged rows are not returned.
-- inputs: identifier {parent} (the embedded table); parameter entity.
-- idempotent: read only. The text is returned for creates and updates only.
with current_rows as (
    select migration.embedding_source_key(p) as legacy_id,
           migration.embedding_text(p) as text
    from {parent} as p
    where not migration.legacy_removed(p)
),
wanted as (
    select legacy_id, text, md5(text) as content_hash
    from current_rows
    where text is not null and legacy_id is not null
)
select
    case when d.document_id is null then 'create'
         when w.legacy_id is null then 'delete'
         else 'update' end as action,
    coalesce(w.legacy_id, d.legacy_id) as legacy_id,
    d.dataset_id,
    d.document_id,
    w.text,
    w.content_hash
from wanted as w
full join (
    select * from migration.dify_documents where entity = %(entity)s
) as d on d.legacy_id = w.legacy_id
where d.document_id is null
   or w.legacy_id is null
   or d.content_hash is distinct from w.content_hash
order by 2
