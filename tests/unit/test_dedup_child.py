"""The linkage engine run in a child process gives what it gives in process, errors included."""

from __future__ import annotations

import pandas as pd
import pytest

from migration_ops.dedup import child
from migration_ops.dedup.engine import deduplicate

THREE = pd.DataFrame(
    {
        "id": [1, 2, 3],
        "f": ["Ann", "ann ", "Bob"],
        "d": ["2000-01-02", "20000102", "1990-05-05"],
    }
)
FIELDS = {"first_name": "f", "birthdate": "d"}


def test_the_child_answers_what_the_engine_answers_in_process() -> None:
    here = deduplicate(THREE, FIELDS, id_column="id")
    there = child.deduplicate(THREE, FIELDS, id_column="id")
    pd.testing.assert_frame_equal(there.pairs, here.pairs)
    pd.testing.assert_frame_equal(there.clusters, here.clusters)
    assert (there.roles, there.training) == (here.roles, here.training)
    # the same model, up to the random name Splink gives each linker
    assert {**there.model, "linker_uid": ""} == {**here.model, "linker_uid": ""}
    assert list(there.clusters["cluster_id"]) == [1, 1, 3]


def test_an_error_in_the_child_is_raised_in_the_parent_as_itself() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        child.deduplicate(pd.DataFrame({"id": [1, 2]}), {"shoe_size": "id"}, id_column="id")


def test_a_child_that_dies_is_reported_by_its_exit_status(monkeypatch) -> None:
    monkeypatch.setattr(child.sys, "executable", "/bin/false")
    with pytest.raises(child.DedupChildError, match="exit status 1"):
        child.deduplicate(THREE, FIELDS, id_column="id")
