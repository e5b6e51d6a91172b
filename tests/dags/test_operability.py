"""What an operator needs from every DAG: docs with recovery, typed and described params,
the target pool on entity steps, phases unpaused (so phase 1 is enough to run 2-4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.entities import PHASES
from migration_ops.pools import TARGET_POOL, pools

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
ENTITY_STEPS = {"transform", "validate", "copy_objects", "load", "checkpoint"}


@pytest.fixture(scope="module")
def dags(tmp_path_factory: pytest.TempPathFactory):
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    return bag.dags


def test_every_dag_says_what_it_does_and_how_to_recover(dags) -> None:
    assert set(dags) == {p.dag_id for p in PHASES} | {
        "backup_target",
        "rollback_phase",
        "incremental_sync",
        "preflight",
        "verify_target",
    }
    for dag_id, dag in dags.items():
        assert dag.doc_md and "Recover" in dag.doc_md, dag_id


def test_every_param_is_typed_and_described(dags) -> None:
    for dag_id, dag in dags.items():
        for name, param in dag.params.items():
            assert param.schema.get("type"), (dag_id, name)
            assert len(param.description or "") >= 20, (dag_id, name)


def test_entity_steps_take_a_target_pool_slot(dags) -> None:
    assert pools()[TARGET_POOL]["slots"] == 4
    for phase in PHASES:
        dag = dags[phase.dag_id]
        steps = [t for t in dag.tasks if t.task_id.split(".")[-1] in ENTITY_STEPS]
        assert len(steps) >= 4 * len(phase.entities), phase.dag_id
        assert {t.pool for t in steps} == {TARGET_POOL}, phase.dag_id
        assert dag.is_paused_upon_creation is False, phase.dag_id


def test_independent_entities_run_in_parallel(dags) -> None:
    """Entities with no parent in their phase start right after the extract, side by side."""
    phase = PHASES[0]
    dag = dags[phase.dag_id]
    roots = [
        e.name for e in phase.entities if not set(e.parents) & {x.name for x in phase.entities}
    ]
    assert len(roots) >= 2
    for name in roots:
        assert dag.get_task(f"{name}.transform").upstream_task_ids == {"begin", "extract"}, name
