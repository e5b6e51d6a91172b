"""Phase 3 (communication): messages, attachments and plan comments, as an Airflow DAG.

The DAG is generated from the phase's entity specs (``include/entities/phase3_communication.py``)
by ``migration_ops.dag_factory``; its documentation in the UI lists every entity, source,
target and suite. It is scheduled on phase 2's Asset and its gate task refuses a manual trigger
until phase 2 has validated. Trigger it from the Airflow UI or with ``make migrate``.
"""

from include.entities import get_phase
from migration_ops.dag_factory import build_phase_dag

dag = build_phase_dag(get_phase(3))
