"""DAG integrity: every DAG parses with no connections available and follows the house rules."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from include.entities import PHASES

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
APPROVED_TAGS = (
    {"migration", "backup", "rollback", "sync", "audit", "preflight", "verify", "report"}
    | {f"phase-{p.number}" for p in PHASES}
    | {p.name for p in PHASES}
)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch):
    """Parse dags/ with every database connection forbidden: top-level work would fail here."""
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

    def no_connections(*args: object, **kwargs: object) -> None:
        raise AssertionError("a DAG file opened a database connection at import time")

    monkeypatch_module.setattr(psycopg, "connect", no_connections)
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_every_phase_has_a_dag(dagbag) -> None:
    assert {p.dag_id for p in PHASES} <= set(dagbag.dags)


def test_dag_id_matches_file_name(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


def test_house_rules(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id}: doc_md missing"
        assert dag.tags and set(dag.tags) <= APPROVED_TAGS, f"{dag_id}: tags {dag.tags}"
        assert dag.max_active_runs == 1, f"{dag_id}: migrations must not overlap"
        for task in dag.tasks:
            if task.task_id != "record_failure":
                assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries={task.retries}"
            assert task.doc_md, f"{dag_id}.{task.task_id}: task docs missing"
        for name in dag.params:
            declared = dag.params.get_param(name)
            assert "type" in declared.schema and declared.description, (
                f"{dag_id}: param {name} untyped"
            )


def test_parse_time_is_small(dagbag) -> None:
    for stat in dagbag.dagbag_stats:
        assert stat.duration.total_seconds() < 5, f"{stat.file} took {stat.duration}"


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.dag_id)
def test_phase_graph_follows_the_specs(dagbag, phase) -> None:
    from migration_ops.dag_factory import steps_of

    dag = dagbag.dags[phase.dag_id]
    extract = dag.get_task("extract")
    assert extract.upstream_task_ids == {"begin"}, "one extract per phase, after begin"
    for entity in phase.entities:
        names = [name for name, _ in steps_of(entity)]
        dedup = ["dedup"] if entity.dedup is not None else []
        assert names[: 2 + len(dedup)] == ["transform", *dedup, "validate"]
        embeds = ["embed", "dify"] if entity.embedding is not None else []
        assert names[-3 - len(embeds) :] == ["load", "verify", *embeds, "checkpoint"]
        assert ("copy_objects" in names) == (entity.object_copy is not None)
        assert ("dedup" in names) == (entity.name == "profiles"), "patients are de-duplicated"
        ids = [f"{entity.name}.{name}" for name in names]
        assert ids[0] in extract.downstream_task_ids, "every entity reads the phase's snapshot"
        for upstream, downstream in zip(ids, ids[1:], strict=False):
            assert dag.get_task(upstream).downstream_task_ids == {downstream}, upstream
        for parent in entity.parents:
            assert (
                f"{entity.name}.transform"
                in dag.get_task(f"{parent}.checkpoint").downstream_task_ids
            )
    record_failure = dag.get_task("record_failure")
    assert record_failure.trigger_rule == "all_done"
    assert {"extract", "publish"} <= record_failure.upstream_task_ids, (
        "a failed publish must be recorded too"
    )
    publish = dag.get_task("publish")
    assert [o.uri for o in publish.outlets] == [phase.asset_uri]
    _assert_signs_off_last(dag, {"publish", "record_failure"})
    if phase.number == 1:
        after_preflight = dag.get_task("preflight").downstream_task_ids
        assert "begin" in after_preflight and any(
            t.startswith("backup.") for t in after_preflight
        ), "phase 1 backs up and begins only after the preflight passed"
    if phase.number > 1:
        assert "begin" in dag.get_task("gate").downstream_task_ids
        previous = f"migration://phase-{phase.number - 1}/validated"
        assert previous in repr(getattr(dag.timetable, "asset_condition", None)), (
            "later phases are scheduled on the previous phase's Asset"
        )


def test_the_sync_runs_every_entity_in_phase_order_nightly(dagbag) -> None:
    from include.entities import SYNC

    dag = dagbag.dags["incremental_sync"]
    assert "expression='0 2 * * *'" in repr(dag.timetable), "nightly by default"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.get_task("gate").downstream_task_ids == {"begin"}
    assert not [t for t in dag.task_ids if t.startswith("backup")], "no full dump per sync"
    assert [o.uri for o in dag.get_task("publish").outlets] == ["migration://sync/completed"]
    # phases 1-4: phase 5 follows the changes through its triggers
    assert {e.name for e in SYNC.entities} == {e.name for p in PHASES[:4] for e in p.entities}
    # phase 2 entities wait for every phase 1 entity (their parents are in the target by then)
    orders = dag.get_task("orders.transform").upstream_task_ids
    assert {"extract", "profiles.checkpoint", "offices.checkpoint", "jaws.checkpoint"} <= orders


def test_every_task_fails_without_values(dagbag) -> None:
    """Every task callable of every DAG is wrapped by ``value_free_task``: whatever it raises
    reaches the task log without the values it quoted (issue 14). A new task without it fails
    here; ``tests/e2e/test_value_free_task_logs.py`` proves the wrapper in real task logs."""
    unwrapped = sorted(
        f"{dag_id}.{task.task_id}"
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if not hasattr(getattr(task, "python_callable", None), "value_free")
    )
    assert unwrapped == []
    wrapped = {
        task.task_id: task.python_callable.value_free
        for dag in dagbag.dags.values()
        for task in dag.tasks
    }
    assert wrapped["target.backup_dump"] == ("backup", "dump")
    assert wrapped["rotate"] == ("backup", "rotate")
    assert wrapped["roll_back"] == ("rollback", "roll_back")
    assert wrapped["verify_target"] == ("verify_target", "verify")
    assert wrapped["record_failure"] == ("run", "record_failure")


def _assert_signs_off_last(dag, upstream: set[str]) -> None:
    """The sign-off summary is rewritten whatever the outcome, after the run's status is final."""
    sign_off = dag.get_task("sign_off")
    assert sign_off.is_teardown, "runs after a failure too, without deciding the run's state"
    assert sign_off.trigger_rule == "all_done_setup_success"
    assert sign_off.upstream_task_ids == upstream
    assert not sign_off.downstream_task_ids


def test_verify_target_rewrites_the_sign_off_after_every_run(dagbag) -> None:
    _assert_signs_off_last(dagbag.dags["verify_target"], {"verify_target"})


def test_phase_5_also_runs_after_every_nightly_sync(dagbag) -> None:
    """The sync's changes reach the queue through the triggers; phase 5 embeds them that night."""
    from include.entities import SYNC, get_phase

    dag = dagbag.dags[get_phase(5).dag_id]
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny", "either Asset triggers a run"
    assert sorted(a.uri for a in condition.objects) == [
        "migration://phase-4/validated",
        SYNC.asset_uri,
    ]
    assert SYNC.asset_uri == "migration://sync/completed"
    for number in (2, 3, 4):
        other = dagbag.dags[get_phase(number).dag_id].timetable.asset_condition
        assert [a.uri for a in other.objects] == [f"migration://phase-{number - 1}/validated"]
