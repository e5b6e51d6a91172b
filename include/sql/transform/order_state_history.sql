-- transform/order_state_history.sql
-- purpose: shape every staged dispatch_state row as a public.order_state_history row (one per
--          state event), actor and time preserved:
--   * the order is the migrated order with legacy_instruction_id = instruction_id. the helper
--     column _order_resolution names the case the suite quarantines on:
--       no_instruction  instruction_id is null (queries on the legacy side filter these out;
--                       here they are held, not dropped)          -> order_state_history.instruction_present
--       not_migrated    the order is not in the target (quarantined or not migrated in
--                       phase 2); loads on a later run            -> order_state_history.order_migrated
--       resolved
--   * the state via ref_state_order_state (11 treatment_active, 12 case_closed) and the seeded
--     catalog; an unmapped code leaves order_state_id null and the suite quarantines the row
--     (order_state_history.status_known): the code's meaning is unknown, so it is not guessed;
--   * "on" kept as is_active; changed_at as is; the actor is the profile of actor_id (null
--     when null or not migrated; raw id kept in legacy_actor_id).
-- inputs: staging.order_state_history__dispatch_state; temp table ref_state_order_state;
--         public.order_states, public.orders, public.profiles.
-- output: staging.order_state_history__transformed, columns and types of
--         public.order_state_history (minus id and timestamps) plus _order_resolution.
-- idempotent: reads only staged rows, the code map and loaded parents; drops and rebuilds its
--             output; no ids, no now().

drop table if exists staging.order_state_history__transformed;

create unlogged table staging.order_state_history__transformed as
select
    s.id::integer as legacy_state_id,
    o.id::uuid as order_id,
    st.id::uuid as order_state_id,
    s."on"::boolean as is_active,
    s.changed_at::timestamptz as changed_at,
    actor.id::uuid as actor_id,
    s.instruction_id::integer as legacy_instruction_id,
    s.status::integer as legacy_status,
    s.actor_id::integer as legacy_actor_id,
    '{}'::jsonb as metadata,
    (case
        when s.instruction_id is null then 'no_instruction'
        when o.id is null then 'not_migrated'
        else 'resolved'
    end)::text as _order_resolution
from staging.order_state_history__dispatch_state as s
left join public.orders as o on o.legacy_instruction_id = s.instruction_id
left join ref_state_order_state as ref on ref.status = s.status
left join public.order_states as st on st.code = ref.order_state
left join public.profiles as actor on actor.legacy_user_id = s.actor_id;
