import random

import pytest

from include.sandbox.volumes import (
    apportion,
    defect_count,
    sample_indices,
    scaled_volumes,
    shuffled_labels,
)


def test_scale_one_is_production():
    volumes = scaled_volumes(1.0)
    assert volumes["auth_user"] == 9_839
    assert volumes["dispatch_patient"] == 8_488
    assert volumes["dispatch_doctorsetting"] == 1_181
    assert volumes["dispatch_office"] == 897
    assert volumes["dispatch_office.valid"] == 546
    assert volumes["dispatch_office_doctors"] == 438
    assert volumes["dispatch_instruction"] == 25_000
    assert volumes["dispatch_jaw"] == 43_458
    assert volumes["dispatch_project"] == 67_000
    assert volumes["dispatch_plan"] == 68_000
    assert volumes["dispatch_comment"] == 16_300
    assert volumes["dispatch_record"] == 70_700
    assert volumes["dispatch_record_attachments"] == 8_700
    assert volumes["dispatch_state"] == 5_500
    assert volumes["dispatch_file"] == 330_000
    assert volumes["dispatch_task"] == 1_000_000


def test_small_scales_keep_proportions_above_the_floors():
    volumes = scaled_volumes(0.1)
    assert volumes["dispatch_instruction"] == 2_500
    assert volumes["dispatch_file"] == 33_000
    assert volumes["auth_user"] == pytest.approx(984, abs=3)


def test_tiny_scales_hit_the_floors_but_stay_consistent():
    volumes = scaled_volumes(0.0001)
    assert volumes["users.patient"] == 24
    assert volumes["dispatch_office"] == 8
    assert volumes["dispatch_plan"] > volumes["dispatch_project"]  # room for shared projects
    assert volumes["dispatch_record_attachments"] <= volumes["dispatch_record"] // 2
    assert volumes["dispatch_office.valid"] <= volumes["dispatch_office"]


@pytest.mark.parametrize("scale", [0, -1.0])
def test_scale_must_be_positive(scale):
    with pytest.raises(ValueError):
        scaled_volumes(scale)


def test_apportion_is_exact_and_honours_minimums():
    counts = apportion(100, {"a": 0.52, "b": 0.42, "c": 0.038, "d": 0.021, "e": 0.0002}, {"e": 1})
    assert sum(counts.values()) == 100
    assert counts["e"] == 1
    assert counts["a"] == 52
    assert counts["b"] == 42


def test_apportion_rejects_impossible_minimums():
    with pytest.raises(ValueError):
        apportion(2, {"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1, "b": 1, "c": 1})


def test_defect_count_is_at_least_one_and_at_most_the_population():
    assert defect_count(85, 0.0011) == 1
    assert defect_count(8_488, 0.0011) == 9
    assert defect_count(3, 0.9, minimum=5) == 3


def test_labels_and_samples_are_deterministic():
    first = shuffled_labels(random.Random(1), 50, {"x": 0.5, "y": 0.5})
    again = shuffled_labels(random.Random(1), 50, {"x": 0.5, "y": 0.5})
    assert first == again
    assert first.count("x") == 25
    picked = sample_indices(random.Random(2), range(10), 20)
    assert picked == list(range(10))
