"""Phase 4 (workflow): order state history, workflow templates and their graph, tasks, in Airflow.

The DAG is generated from the phase's entity specs (``include/entities/phase4_workflow.py``) by
``migration_ops.dag_factory``; its documentation in the UI lists every entity, source, target
and suite. It is scheduled on phase 3's Asset and its gate task refuses a manual trigger until
phase 3 has validated. Trigger it from the Airflow UI or with ``make migrate``.
"""

from include.entities import get_phase
from migration_ops.dag_factory import build_phase_dag

dag = build_phase_dag(get_phase(4))
