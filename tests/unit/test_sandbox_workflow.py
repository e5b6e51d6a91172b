from graphlib import CycleError, TopologicalSorter

import pytest

from include.sandbox.common import DefectLog
from include.sandbox.defects import DEFECTS
from include.sandbox.workflow import WORKFLOWS, category_rows, predecessor_rows, templates

REQUIRED = (
    "email_empty",
    "email_invalid",
    "user_no_group",
    "user_multi_group",
    "test_account",
    "duplicate_doctor",
    "duplicate_patient",
    "name_blank",
    "tax_rate_percent",
    "tax_rate_invalid",
    "country_variant",
    "country_null",
    "country_unknown",
    "suffix_missing",
    "suffix_malformed",
    "schemes_invalid_json",
    "exports_invalid_json",
    "sex_invalid",
    "patient_status_unknown",
    "birthdate_implausible",
    "patient_no_doctor",
    "patient_no_office",
    "order_soft_deleted",
    "order_status_unknown",
    "record_type_unknown",
    "record_target_unknown_model",
    "record_target_namesake_model",
    "record_target_null_type",
    "record_target_dangling",
    "text_multilingual",
    "text_mojibake",
    "state_no_instruction",
    "state_status_unknown",
    "template_cycle",
    "file_double_extension",
    "file_missing_media",
    "jaw_unreferenced",
    "project_shared",
)


def test_catalogue_has_every_required_defect():
    assert set(REQUIRED) <= set(DEFECTS)


def test_defect_log_rejects_unknown_names():
    log = DefectLog()
    log.add("email_empty", "auth_user", 1)
    with pytest.raises(KeyError):
        log.add("email_emtpy", "auth_user", 1)


def test_reference_volumes():
    rows = templates()
    assert len(category_rows()) == 44
    assert len(rows) == 169
    assert len(predecessor_rows(rows, DefectLog())) == 191
    ids = [t.id for t in rows]
    assert ids == sorted(set(ids))
    assert ids[-1] > len(ids)  # gaps, as after deletions


def test_categories_reference_existing_parents():
    rows = category_rows()
    ids = {row_id for row_id, _, _ in rows}
    assert all(parent is None or parent in ids for _, _, parent in rows)


def test_every_course_has_its_workflow():
    by_course = {t.course_id for t in templates() if t.course_id is not None}
    assert by_course == set(WORKFLOWS)


def test_exactly_one_cycle_and_it_is_logged():
    rows = templates()
    log = DefectLog()
    edges = predecessor_rows(rows, log)
    assert log.rows == [("template_cycle", "dispatch_template_predecessors", edges[-1][0], None)]

    def graph(pairs):
        nodes: dict[int, set[int]] = {}
        for _, later, earlier in pairs:
            nodes.setdefault(later, set()).add(earlier)
        return TopologicalSorter(nodes)

    with pytest.raises(CycleError):
        graph(edges).prepare()
    graph(edges[:-1]).prepare()
