"""Phase 2 (relationships): doctor offices, jaws, orders, projects, plans and files, in Airflow.

The DAG is generated from the phase's entity specs (``include/entities/phase2_relationships.py``)
by ``migration_ops.dag_factory``; its documentation in the UI lists every entity, source,
target and suite. It is scheduled on phase 1's Asset and its gate task refuses a manual trigger
until phase 1 has validated. The files group copies bytes to Supabase Storage (connection
``supabase_storage``). Trigger it from the Airflow UI or with ``make migrate``.
"""

from include.entities import get_phase
from migration_ops.dag_factory import build_phase_dag

dag = build_phase_dag(get_phase(2))
