-- ai/rollback_phase5.sql
-- purpose: before phase 5's queue rows are deleted by a rollback: switch the enqueue triggers
--          off (phases 1-4 are then exactly as they were before phase 5) and remove everything
--          else phase 5 made: the vectors and the Dify mapping rows (the Dify documents
--          themselves are deleted through the API first, see migration_ops.ai.dify_sync).
-- inputs: none.
-- idempotent: a second run finds the triggers off and nothing left to delete.
do $$
declare
    t text;
begin
    foreach t in array array['public.messages', 'public.orders', 'public.profiles',
                             'public.projects'] loop
        if exists (select 1 from pg_trigger
                   where tgrelid = t::regclass and tgname = 'embedding_enqueue_insert') then
            execute format('alter table %s disable trigger embedding_enqueue_insert, '
                           'disable trigger embedding_enqueue_update, '
                           'disable trigger embedding_enqueue_delete', t);
        end if;
    end loop;
    foreach t in array array['message_embeddings', 'order_embeddings', 'profile_embeddings',
                             'project_embeddings'] loop
        if to_regclass('public.' || t) is not null then
            execute format('delete from public.%I', t);
        end if;
    end loop;
    if to_regclass('migration.dify_documents') is not null then
        delete from migration.dify_documents;
    end if;
end
$$;
