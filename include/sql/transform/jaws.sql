-- transform/jaws.sql
-- purpose: shape every staged dispatch_jaw row as a public.jaws row (one row per jaw):
--   * arch from the instructions that reference the jaw: upper_jaw_id -> 'upper',
--     lower_jaw_id -> 'lower' (a jaw row itself does not say; legacy-system.md §1a). a jaw no
--     instruction references is kept with arch null and flag 'unreferenced' (§1c #20: the
--     earlier migration defaulted these to 'upper', a guess); a jaw referenced as both upper
--     and lower keeps arch null with flag 'arch_conflict';
--   * bond_teeth / extract_teeth kept exactly: a value that is not a 16-character bit string
--     is quarantined by the suite (jaws.bond_teeth_format / .extract_teeth_format), since no
--     repair has one right answer; reason trimmed, blank -> null; product id kept raw
--     (dispatch_product is not migrated).
-- inputs: staging.jaws__dispatch_jaw, staging.jaws__dispatch_instruction (id and jaw ids).
-- output: staging.jaws__transformed, columns and types of public.jaws.
-- idempotent: reads only staged rows; drops and rebuilds its output; no ids, no now().

drop table if exists staging.jaws__transformed;

create unlogged table staging.jaws__transformed as
with
refs as (
    select i.upper_jaw_id as jaw_id, 'upper' as arch
    from staging.jaws__dispatch_instruction as i
    where i.upper_jaw_id is not null
    union all
    select i.lower_jaw_id, 'lower'
    from staging.jaws__dispatch_instruction as i
    where i.lower_jaw_id is not null
),

arches as (
    select r.jaw_id, min(r.arch) as arch, count(distinct r.arch) as arch_count
    from refs as r
    group by r.jaw_id
)

select
    j.id::integer as legacy_jaw_id,
    (case when a.arch_count = 1 then a.arch end)::text as arch,
    j.bond_teeth::text as bond_teeth,
    j.extract_teeth::text as extract_teeth,
    nullif(btrim(j.reason), '')::text as replacement_reason,
    j.labial::boolean as is_labial,
    j.product_id::integer as legacy_product_id,
    array_remove(array[
        case when a.jaw_id is null then 'unreferenced' end,
        case when a.arch_count > 1 then 'arch_conflict' end
    ], null)::text[] as flags
from staging.jaws__dispatch_jaw as j
left join arches as a on a.jaw_id = j.id;
