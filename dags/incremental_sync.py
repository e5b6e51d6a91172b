"""Airflow DAG `incremental_sync`: the target follows the live legacy database until cut-over.

Generated from the entity specs of phases 1–4 (``include/entities``) by
``migration_ops.dag_factory``; each entity reads and writes only what changed in legacy since
the last sync. Nightly (``MIGRATION_SYNC_SCHEDULE``, default 02:00), refused until phase 4 has
validated; trigger it any time from the UI, or run it once with ``make sync``.
"""

from include.entities import SYNC
from migration_ops.dag_factory import build_phase_dag

dag = build_phase_dag(SYNC)
