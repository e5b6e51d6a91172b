-- transform/workflow_template_predecessors.sql
-- purpose: shape every staged dispatch_template_predecessors row as a
--          public.workflow_template_predecessors row (one per edge; from_template_id's
--          predecessor is to_template_id), and find the edges that lie on a cycle:
--   * reachability is a recursive cte over (source, node) pairs combined with UNION, not
--     UNION ALL: a pair already found is discarded, so the recursion ends on any graph, cyclic
--     or not, after at most |templates|^2 pairs. it is never looped on. (tracking whole paths
--     with the CYCLE clause would also stop at cycles, but the number of distinct paths of a
--     workflow with skip edges grows like the fibonacci numbers: millions for one 34-step
--     workflow. pairs stay in the tens of thousands.)
--   * an edge a -> b lies on a cycle when a is reachable from b (or a = b). such edges are
--     kept and flagged (in_cycle), with the legacy ids of the templates on the cycle(s) through
--     them (nodes v with b ->* v ->* a) in cycle_template_ids; the suite reports how many
--     (rule workflow_template_predecessors.cycle_edges_reported) without failing, so the rest
--     of the graph is never held back for one bad edge;
--   * both ends are the migrated templates (legacy_template_id); an end that is not in the
--     target leaves its key null and the suite quarantines the edge under the rule naming
--     which end (workflow_template_predecessors.template_migrated / .predecessor_migrated).
-- inputs: staging.workflow_template_predecessors__dispatch_template_predecessors;
--         public.workflow_templates (loaded first in this phase).
-- output: staging.workflow_template_predecessors__transformed, columns and types of
--         public.workflow_template_predecessors (minus id and timestamps).
-- idempotent: reads only staged rows and loaded parents; drops and rebuilds its output.

drop table if exists staging.workflow_template_predecessors__transformed;

create unlogged table staging.workflow_template_predecessors__transformed as
with recursive
edges as (
    select
        e.id,
        e.from_template_id as template,
        e.to_template_id as predecessor
    from staging.workflow_template_predecessors__dispatch_template_predecessors as e
),

-- reach(source, node): node is reachable from source in one or more steps.
reach (source, node) as (
    select template, predecessor from edges
    union
    select r.source, e.predecessor
    from reach as r
    join edges as e on e.template = r.node
),

cyclic as (
    select e.*
    from edges as e
    where e.template = e.predecessor
       or exists (select 1 from reach as r where r.source = e.predecessor and r.node = e.template)
),

-- the templates on the cycle(s) through each cyclic edge a -> b: b and every node reachable
-- from b that reaches a back.
cycle_members as (
    select c.id, array_agg(distinct v.node order by v.node) as nodes
    from cyclic as c
    cross join lateral (
        select c.predecessor as node
        union
        select r.node from reach as r where r.source = c.predecessor
    ) as v
    where v.node = c.template
       or exists (select 1 from reach as r where r.source = v.node and r.node = c.template)
    group by c.id
)

select
    e.id::integer as legacy_predecessor_id,
    t.id::uuid as template_id,
    p.id::uuid as predecessor_id,
    e.template::integer as legacy_template_id,
    e.predecessor::integer as legacy_predecessor_template_id,
    (m.id is not null)::boolean as in_cycle,
    m.nodes::integer[] as cycle_template_ids,
    '{}'::jsonb as metadata
from edges as e
left join public.workflow_templates as t on t.legacy_template_id = e.template
left join public.workflow_templates as p on p.legacy_template_id = e.predecessor
left join cycle_members as m on m.id = e.id;
