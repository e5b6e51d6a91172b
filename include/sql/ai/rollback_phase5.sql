-- ai/rollback_phase5.sql
-- purpose: before one phase 5 entity's queue rows are deleted by a rollback (its own
--          transaction): switch the enqueue triggers off (phases 1-4 are then exactly as they
--          were before phase 5) and remove the rest of what phase 5 made FOR THIS ENTITY: its
--          vectors. Its Dify mapping rows are never dropped here: migration_ops.ai.dify_sync
--          deletes each document through the API and then its mapping row; a mapping row still
--          present now means a document would be left behind in Dify, so this refuses.
--          It also drops the row adapters migration.embedding_text(<public row>) and
--          migration.embedding_source_key(<public row>): objects outside public that depend on
--          public's row types would make a restore of public refuse (restore_prepare.sql);
--          phase 5's schema file creates them again before its triggers are enabled.
-- inputs: settings migration.embedding_entity (the queue entity, e.g. 'messages') and
--         migration.embedding_vectors (its vectors table, e.g. 'public.message_embeddings').
-- idempotent: a second run finds the triggers off, the adapters gone and nothing to delete.
do $$
declare
    t text;
    v_entity text := current_setting('migration.embedding_entity');
    v_vectors regclass := to_regclass(current_setting('migration.embedding_vectors'));
    mapped bigint := 0;
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
    if v_vectors is not null then
        execute format('delete from %s', v_vectors);
    end if;
    if to_regclass('migration.dify_documents') is not null then
        select count(*) into mapped from migration.dify_documents as d where d.entity = v_entity;
    end if;
    if mapped > 0 then
        raise exception 'rollback of % refused: % Dify documents still mapped (rule '
                        'rollback.dify_documents_mapped); delete them through the API first',
                        v_entity, mapped;
    end if;
    foreach t in array array['public.messages', 'public.orders', 'public.profiles',
                             'public.projects'] loop
        execute format('drop function if exists migration.embedding_text(%s)', t);
        execute format('drop function if exists migration.embedding_source_key(%s)', t);
    end loop;
end
$$;
