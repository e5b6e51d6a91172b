"""Phase 1 (core): offices, profiles and order types, from the legacy Django database.

The DAG is generated from the phase's entity specs (``include/entities/phase1_core.py``) by
``migration_ops.dag_factory``; its documentation in the UI lists every entity, source,
target and suite. Trigger it from the Airflow UI or with ``make migrate``.
"""

from include.entities import get_phase
from migration_ops.dag_factory import build_phase_dag

dag = build_phase_dag(get_phase(1))
