"""Phase 5 (AI): embedding queue, vectors in pgvector, semantic search, in Airflow.

The DAG is generated from the phase's entity specs (``include/entities/phase5_ai.py``) by
``migration_ops.dag_factory``: its entities read migrated *target* rows, queue them, switch the
enqueue triggers on and embed the queue with the provider named by
``MIGRATION_EMBEDDING_PROVIDER`` (environment variable or Airflow Variable: bedrock, local or
hashing; no default). It is scheduled on phase 4's Asset or the nightly sync's
(``migration://sync/completed``: the sync's changes are embedded and sent to Dify the same
night), takes a verified backup first and its gate task refuses a manual trigger until phase 4
has validated.
"""

from include.entities import get_phase
from migration_ops.dag_factory import build_phase_dag

dag = build_phase_dag(get_phase(5))
