-- ai/rollback_phase5.sql
-- purpose: before phase 5's queue rows are deleted by a rollback: switch the enqueue triggers
--          off (phases 1-4 are then exactly as they were before phase 5) and remove everything
--          else phase 5 made: the vectors and the Dify mapping rows (the Dify documents
--          themselves are deleted through the API first, see migration_ops.ai.dify_sync).
--          It also drops the row adapters migration.embedding_text(<public row>) and
--          migration.embedding_source_key(<public row>): objects outside public that depend on
--          public's row types would make a restore of public refuse (restore_prepare.sql);
--          phase 5's schema file creates them again before its triggers are enabled.
-- inputs: none.
-- idempotent: a second run finds the triggers off, the adapters gone and nothing to delete.
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
    foreach t in array array['public.messages', 'public.orders', 'public.profiles',
                             'public.projects'] loop
        execute format('drop function if exists migration.embedding_text(%s)', t);
        execute format('drop function if exists migration.embedding_source_key(%s)', t);
    end loop;
end
$$;
