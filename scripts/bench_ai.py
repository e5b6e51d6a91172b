"""Benchmark (not a test): phase 5's embedding queue and semantic search at a given scale.

Prints texts/s of the queue (claim, embed in a bounded pool, write vectors, settle) with the
``hashing`` and ``local`` (WordLlama) providers, then the latency of ``match_messages``
searches through the HNSW index. Messages are synthetic, as many as the sandbox has at that
scale (85,500 at 1.0), in a scratch database with the target schema of phases 1-5.

    make bench                 # scale 1.0
    SCALE=0.1 make bench
"""

from __future__ import annotations

import argparse
import statistics
import time

from include.entities import PHASES, get_entity
from migration_ops import local_env, runs
from migration_ops.ai import embed_queue, search
from migration_ops.ai.providers import EmbeddingProvider, HashingProvider, LocalProvider
from migration_ops.db import connect, run_sql_file

#: Messages of the sandbox at scale 1.0 (855 at 0.01).
MESSAGES_AT_SCALE_1 = 85_500
QUERIES = (
    "rescan tooth 16",
    "intrude upper incisors",
    "patient reports discomfort",
    "bite ramps before printing",
    "reduce IPR at stage 3",
)


def _queue_rate(target: str, provider: EmbeddingProvider, n: int) -> float:
    with connect(target) as conn:
        run_sql_file(conn, "ai/bench_messages.sql", settings={"bench_messages": n})
        conn.execute("delete from public.message_embeddings")
    spec = get_entity("embed_messages").embedding
    assert spec is not None
    started = time.perf_counter()
    stats = embed_queue.process_queue(target, spec, provider, batch_size=200, workers=2)
    seconds = time.perf_counter() - started
    assert stats.embedded_rows == n, stats
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    n = max(1, round(MESSAGES_AT_SCALE_1 * args.scale))
    socket_dir = local_env.start()
    target = local_env.ensure_database(socket_dir, "bench_ai_target", recreate=True)
    for phase in PHASES:
        runs.apply_schema(target, phase)
    print(
        f"phase 5 queue, {n:,} synthetic messages (scale {args.scale}), 2 workers, batches of 200"
    )
    rates = {}
    for provider in (LocalProvider(), HashingProvider()):
        rates[provider.model_id] = _queue_rate(target, provider, n)
        print(f"  {provider.model_id:<36}{rates[provider.model_id]:>10,.0f} texts/s")
    latencies = []
    provider = HashingProvider()
    for round_ in range(10):
        for query in QUERIES:
            started = time.perf_counter()
            hits = search.search(target, "messages", query, provider, k=5)
            if round_:  # the first round warms the index into memory
                latencies.append((time.perf_counter() - started) * 1000)
            assert len(hits) == 5
    print(
        f"search (match_messages, HNSW, ef_search {search.EF_SEARCH}, k 5) over {n:,} vectors: "
        f"median {statistics.median(latencies):.1f} ms, "
        f"p95 {statistics.quantiles(latencies, n=20)[-1]:.1f} ms "
        f"({len(latencies)} queries, embedding the query included)"
    )


if __name__ == "__main__":
    main()
