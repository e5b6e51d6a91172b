from include.entities.phase3_communication import RECORD_TARGETS
from include.sandbox.content_types import (
    CONTRIB,
    NAMESAKES,
    content_type_id_offset,
    content_type_rows,
    permission_rows,
)


def _ids(seed):
    return {(app, model): ct_id for ct_id, app, model in content_type_rows(seed)}


def test_contrib_apps_come_first_in_django_order():
    rows = content_type_rows(7)
    assert [(app, model) for _, app, model in rows[: len(CONTRIB)]] == list(CONTRIB)
    assert [ct_id for ct_id, _, _ in rows[: len(CONTRIB)]] == [1, 2, 3, 4, 5, 6]


def test_ids_and_natural_keys_are_unique_and_ascending():
    rows = content_type_rows(11)
    ids = [ct_id for ct_id, _, _ in rows]
    assert ids == sorted(set(ids))
    assert len({(app, model) for _, app, model in rows}) == len(rows)


def test_stale_models_and_later_apps_are_present():
    ids = _ids(7)
    assert ("dispatch", "case") in ids
    assert ("sessions", "session") in ids
    assert ("account", "emailaddress") in ids


def test_layout_is_deterministic_per_seed():
    assert content_type_rows(7) == content_type_rows(7)


def test_seeds_move_dispatch_patient():
    assert _ids(7)[("dispatch", "patient")] != _ids(8)[("dispatch", "patient")]
    patient_ids = {_ids(seed)[("dispatch", "patient")] for seed in range(45)}
    assert len(patient_ids) == 45
    assert _ids(7)[("dispatch", "patient")] == 7 + content_type_id_offset(7)


def test_four_permissions_per_content_type():
    rows = content_type_rows(3)
    permissions = permission_rows(rows)
    assert len(permissions) == 4 * len(rows)
    assert len({(ct, codename) for _, _, ct, codename in permissions}) == len(permissions)


def test_namesakes_share_a_model_name_with_a_mapped_relation_but_not_its_app():
    ids = _ids(11)
    mapped = {(r.app_label, r.model) for r in RECORD_TARGETS}
    for app, model in NAMESAKES:
        assert (app, model) in ids and (app, model) not in mapped
    assert {m for _, m in NAMESAKES} & {m for _, m in mapped} == {"user", "project"}
    assert ids[("users", "user")] > ids[("auth", "user")]
