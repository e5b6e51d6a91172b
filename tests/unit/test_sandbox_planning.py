from collections import Counter

import pytest

from include.sandbox import build_sandbox
from include.sandbox.common import DefectLog
from include.sandbox.orders import NON_TREATMENT, plan_orders
from include.sandbox.people import plan_offices, plan_patients, plan_users
from include.sandbox.volumes import scaled_volumes


def _plan(seed=7, scale=0.01):
    volumes = scaled_volumes(scale)
    defects = DefectLog()
    users = plan_users(seed, volumes)
    offices = plan_offices(seed, volumes, users, defects)
    patients = plan_patients(seed, users, offices, defects)
    orders = plan_orders(seed, volumes, patients, defects)
    return volumes, users, offices, patients, orders, defects


def test_planning_is_deterministic():
    first, again = _plan(), _plan()
    assert first[1] == again[1]
    assert first[3] == again[3]
    assert first[4] == again[4]
    assert first[5].rows == again[5].rows
    assert _plan(seed=8)[3].ids != first[3].ids


def test_people_skeleton_is_consistent():
    volumes, users, offices, patients, _, _ = _plan()
    doctors = set(users.of_role("doctor"))
    assert len(users.ids) == volumes["auth_user"]
    assert users.ids == sorted(set(users.ids))
    assert set(offices.owner) <= doctors
    assert {d for d in patients.doctor if d is not None} <= doctors
    assert {o for o in patients.office if o is not None} <= set(offices.ids)
    assert patients.ids == sorted(set(patients.ids))
    assert all(users.roles[i] == "patient" for i in patients.user_index)


def test_orders_skeleton_is_consistent():
    volumes, _, _, patients, orders, defects = _plan()
    assert len(orders.ids) == volumes["dispatch_instruction"]
    assert orders.time == sorted(orders.time)
    referenced = {j for j in orders.upper + orders.lower if j is not None}
    orphans = {jaw_id for jaw_id, _, side in orders.jaws if side == "orphan"}
    assert orphans and not orphans & referenced
    assert len(orders.jaws) == len(referenced) + len(orphans)
    for i, course in enumerate(orders.course):
        if course in NON_TREATMENT:
            assert orders.upper[i] is None and orders.lower[i] is None and orders.plan_count[i] == 0
    assert len(orders.plan_instruction) == volumes["dispatch_plan"]
    assert max(orders.plan_project) == len(orders.project_time)
    plans_per_project = Counter(orders.plan_project)
    shared = [row[2] for row in defects.rows if row[0] == "project_shared"]
    assert shared and all(plans_per_project[p] >= 2 for p in shared)
    assert {p for p, n in plans_per_project.items() if n >= 2} == set(shared)
    assert all(0 <= p < len(patients.ids) for p in orders.patient)


def test_refuses_a_media_tree_it_did_not_write(tmp_path):
    (tmp_path / "files").mkdir()
    with pytest.raises(ValueError, match="not written by the sandbox"):
        build_sandbox("postgresql://nobody@/none?host=/nonexistent", media_dir=tmp_path)
