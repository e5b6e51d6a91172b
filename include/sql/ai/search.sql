-- ai/search.sql
-- purpose: the top matches of a query vector through the entity's public.match_<entity>
--          function (the same one PostgREST RPC calls): legacy id and similarity, no text;
--          only vectors of the query's model (a provider change never mixes two models).
-- inputs: identifier {match_function}; parameters query (vector text), threshold, k, model.
-- idempotent: read only.
select legacy_id, similarity
from {match_function}(%(query)s::vector(1024), %(threshold)s, %(k)s, %(model)s)
