"""Semantic search over an entity's vectors, as ``migration_ops.cli search`` prints it.

The query text is embedded with the configured provider and answered by
``public.match_<entity>`` over that provider's vectors only (its model id: after a provider
change, rows not re-embedded yet are left out rather than compared across models): the SQL
function Supabase clients call by RPC, under RLS. Only legacy ids and similarities come
back; the query text is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from include.entities.phase5_ai import PHASE_5
from include.entities.spec import EmbeddingSpec
from migration_ops.ai.embed_queue import use_vector, vector_literal
from migration_ops.ai.providers import EmbeddingProvider
from migration_ops.db import connect, read_sql

#: HNSW candidates per query: the reference measured recall@10 ≈ 0.94 at 100 (0.8 at 40).
EF_SEARCH = 100

EMBEDDABLE: dict[str, EmbeddingSpec] = {
    e.embedding.queue_entity: e.embedding for e in PHASE_5.entities if e.embedding is not None
}


@dataclass(frozen=True)
class Match:
    """One search hit: the row's legacy id and its cosine similarity to the query."""

    legacy_id: int | None
    similarity: float


def search(
    target_dsn: str,
    entity: str,
    query: str,
    provider: EmbeddingProvider,
    *,
    k: int = 5,
    threshold: float = 0.0,
) -> list[Match]:
    """The ``k`` rows of ``entity`` most similar to ``query`` (at least ``threshold``)."""
    if entity not in EMBEDDABLE:
        raise KeyError(f"no embeddable entity {entity!r}; known: {sorted(EMBEDDABLE)}")
    vector = provider.embed([query])[0]
    statement = sql.SQL(read_sql("ai/search.sql")).format(
        match_function=sql.Identifier("public", f"match_{entity}")
    )
    with connect(target_dsn, application_name="migration:search") as conn:
        use_vector(conn)
        conn.execute(sql.SQL("set local hnsw.ef_search = {}").format(sql.Literal(EF_SEARCH)))
        rows = conn.execute(
            statement,
            {
                "query": vector_literal(vector),
                "threshold": threshold,
                "k": k,
                "model": provider.model_id,
            },
        ).fetchall()
    return [Match(None if r[0] is None else int(r[0]), float(r[1])) for r in rows]
