"""Who a backup or a run records as its trigger: the user, else the run type's plain value."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.api.datamodels._generated import DagRunType

from migration_ops import dag_factory


@pytest.mark.parametrize(
    ("user", "run_type", "actor"),
    [
        (None, DagRunType.ASSET_TRIGGERED, "asset_triggered"),
        (None, DagRunType.SCHEDULED, "scheduled"),
        (None, "manual", "manual"),
        ("admin", DagRunType.MANUAL, "admin"),
    ],
)
def test_current_actor_is_the_user_or_the_run_type_value(
    monkeypatch, user: str | None, run_type: object, actor: str
) -> None:
    dag_run = SimpleNamespace(triggering_user_name=user, run_type=run_type)
    monkeypatch.setattr(dag_factory, "get_current_context", lambda: {"dag_run": dag_run})
    assert dag_factory.current_actor() == actor
