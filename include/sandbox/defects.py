"""Catalogue of the production data defects the sandbox injects, with source and rate.

Each class is documented in ``legacy-system.md`` (section given in ``source``); where the
documents give no number the rate is a stated assumption (``documented=False``). The
builders take their rates from here (e-mail kinds are apportioned per role so that the
overall shares come out as listed, and shared projects follow from the plan and project
volumes), and ``docs/sandbox.md`` lists the same table, so the code and the documentation
cannot drift apart silently. Every instance the builders inject
is logged in ``sandbox.injected_defects(defect, table_name, legacy_id)``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    """One class of production defect.

    Attributes:
        name: value of ``sandbox.injected_defects.defect``.
        table: legacy table whose row the instance is logged against.
        source: section of legacy-system.md that documents it.
        rate: fraction of the table's (or the stated population's) rows affected.
        population: which rows ``rate`` applies to.
        documented: whether ``rate`` is a documented number (else an assumption).
        what: what an instance looks like.
    """

    name: str
    table: str
    source: str
    rate: float
    population: str
    documented: bool
    what: str


_CATALOGUE = (
    Defect(
        "email_empty",
        "auth_user",
        "§1a auth_user, §1c #1",
        0.85,
        "users",
        True,
        "email = ''; with email_invalid ~86% of users have no valid address (7,857/9,101)",
    ),
    Defect(
        "email_invalid",
        "auth_user",
        "§1c #1",
        0.012,
        "users",
        False,
        "apostrophe, missing @, space, trailing dot",
    ),
    Defect(
        "user_no_group",
        "auth_user",
        "§1a auth_user_groups, §1c #5",
        0.03,
        "users",
        False,
        "no auth_user_groups row",
    ),
    Defect(
        "user_multi_group",
        "auth_user",
        "§1a auth_user_groups, §1c #5",
        0.015,
        "users",
        False,
        "two groups, e.g. doctor + master, patient + doctor",
    ),
    Defect(
        "test_account",
        "auth_user",
        "§1c #3",
        223 / 1181,
        "doctors",
        True,
        "@brius.com (215), @mechanodontics.com (7), demo (1)",
    ),
    Defect(
        "duplicate_doctor",
        "auth_user",
        "§1c #2",
        (62 + 122) / 1181,
        "doctors",
        True,
        "same e-mail up to case/whitespace (62 rows over 7 addresses) or same name (122 rows "
        "over 40 names); logged on the later copies",
    ),
    Defect(
        "name_blank",
        "auth_user",
        "§1a auth_user",
        0.01,
        "users",
        False,
        "first or last name '' or the string 'null'",
    ),
    Defect(
        "duplicate_patient",
        "dispatch_patient",
        "§1e de-duplication",
        0.01,
        "patients",
        False,
        "a second patient user, same sex: name case/whitespace/accents; DOB equal, day/month "
        "swapped, year +-1 or one digit mistyped; at most one more: name typo, changed surname, "
        "another doctor; related_id = the original",
    ),
    Defect(
        "suffix_missing",
        "dispatch_patient",
        "§1c #11",
        (8488 - 7180) / 8488,
        "patients",
        True,
        "suffix NULL or ''",
    ),
    Defect(
        "suffix_malformed",
        "dispatch_patient",
        "§1c #11",
        1 / 8488,
        "patients",
        True,
        "suffix not 4 characters",
    ),
    Defect(
        "schemes_invalid_json",
        "dispatch_patient",
        "§1c #12, #18",
        0.01,
        "patients",
        False,
        "schemes text that does not parse as JSON",
    ),
    Defect(
        "sex_invalid",
        "dispatch_patient",
        "§1c #13",
        0.002,
        "patients",
        False,
        "sex code other than 0, 1, 2, NULL",
    ),
    Defect(
        "patient_status_unknown",
        "dispatch_patient",
        "§1c #13",
        0.002,
        "patients",
        False,
        "status code other than 1, 2, 4, 10",
    ),
    Defect(
        "birthdate_implausible",
        "dispatch_patient",
        "§1c #29",
        0.002,
        "patients",
        False,
        "birthdate before 1900-01-01 or after 2025-11-01",
    ),
    Defect(
        "patient_no_doctor",
        "dispatch_patient",
        "§1c #10, #14",
        0.0011,
        "patients",
        True,
        "doctor_id NULL (patient->doctor coverage 99.89%)",
    ),
    Defect(
        "patient_no_office",
        "dispatch_patient",
        "§1c #10",
        0.0469,
        "patients",
        True,
        "office_id NULL (patient->office coverage 95.31%)",
    ),
    Defect(
        "tax_rate_percent",
        "dispatch_office",
        "§1c #7",
        0.04,
        "offices",
        False,
        "tax_rate > 1 meaning a percentage, e.g. 10.2500",
    ),
    Defect(
        "tax_rate_invalid",
        "dispatch_office",
        "§1c #7",
        0.003,
        "offices",
        False,
        "impossible even as a percentage: 150, 1000, negative",
    ),
    Defect(
        "country_variant",
        "dispatch_office",
        "§1c #8",
        0.12,
        "offices with a country",
        False,
        "'US', 'U.S.A.', 'united states', ' Japan ', 'JP', 'Viet Nam' ...",
    ),
    Defect(
        "country_null",
        "dispatch_office",
        "§1c #8",
        4 / 897,
        "offices",
        True,
        "country NULL (4 offices)",
    ),
    Defect(
        "country_unknown",
        "dispatch_office",
        "§1c #8",
        0.002,
        "offices",
        False,
        "unrecognisable free text: 'TBD', 'see address' ...",
    ),
    Defect(
        "order_soft_deleted",
        "dispatch_instruction",
        "§1c #23",
        0.0142,
        "instructions",
        True,
        "deleted = true (1.42% of 2025 orders)",
    ),
    Defect(
        "order_status_unknown",
        "dispatch_instruction",
        "§1a dispatch_instruction",
        0.001,
        "instructions",
        False,
        "status code other than 0, 1, 2, 4",
    ),
    Defect(
        "exports_invalid_json",
        "dispatch_instruction",
        "§1c #18",
        0.003,
        "instructions",
        False,
        "exports text that does not parse as JSON",
    ),
    Defect(
        "record_type_unknown",
        "dispatch_record",
        "§1a dispatch_record, §1c #17",
        18 / 70700,
        "records",
        True,
        "type NULL (13 at scale 1) or an unknown code (5 at scale 1)",
    ),
    Defect(
        "record_target_unknown_model",
        "dispatch_record",
        "§1c #16",
        0.012,
        "records",
        False,
        "target_type_id of sessions.session or a stale model (dispatch.case, dispatch.message)",
    ),
    Defect(
        "record_target_namesake_model",
        "dispatch_record",
        "§1c #16 (assumption: third-party apps)",
        0.002,
        "records",
        False,
        "target_type_id of a third-party model named like a mapped one (users.user, "
        "projects.project), target_id an existing auth_user / dispatch_project id",
    ),
    Defect(
        "record_target_null_type",
        "dispatch_record",
        "§1c #16",
        0.003,
        "records",
        False,
        "target_type_id NULL",
    ),
    Defect(
        "record_target_dangling",
        "dispatch_record",
        "§1c #15",
        0.005,
        "records",
        False,
        "target_id of a patient or instruction that does not exist",
    ),
    Defect(
        "text_multilingual",
        "dispatch_record",
        "§1a dispatch_record, §1c #19",
        0.4,
        "texts about patients of Japanese/Thai offices",
        True,
        "Japanese or Thai clinical text (also on dispatch_comment and dispatch_instruction)",
    ),
    Defect(
        "text_mojibake",
        "dispatch_record",
        "§1c #19",
        0.003,
        "texts",
        False,
        "UTF-8 text decoded as latin-1 ('CafÃ©'); also on comments and instructions",
    ),
    Defect(
        "state_no_instruction",
        "dispatch_state",
        "§1a dispatch_state",
        0.02,
        "states",
        False,
        "instruction_id NULL",
    ),
    Defect(
        "state_status_unknown",
        "dispatch_state",
        "§1a dispatch_state",
        0.005,
        "states",
        False,
        "status other than 11/12 (13-20 only appear as a guess in one script)",
    ),
    Defect(
        "template_cycle",
        "dispatch_template_predecessors",
        "§1a dispatch_template",
        0.0,
        "predecessor graph",
        False,
        "one edge closing a cycle A->B->C->A (logged: that edge)",
    ),
    Defect(
        "file_double_extension",
        "dispatch_file",
        "§1c #21",
        0.01,
        "files",
        False,
        "name already ends with '.stl' and ext = 'stl'",
    ),
    Defect(
        "file_missing_media",
        "dispatch_file",
        "§1c reconciliation (files 325,432/325,446)",
        0.02,
        "files chosen to have media",
        False,
        "listed in sandbox.media_manifest but its bytes were not written",
    ),
    Defect(
        "jaw_unreferenced",
        "dispatch_jaw",
        "§1a dispatch_jaw, §1c #20",
        0.008,
        "jaws",
        True,
        "no instruction's upper_jaw_id/lower_jaw_id points at it (343-363 of 43,458)",
    ),
    Defect(
        "project_shared",
        "dispatch_project",
        "§1a dispatch_plan, §1c #20",
        0.02,
        "plans",
        False,
        "two or more plans point at the project (plans - projects + 0.5% orphan projects)",
    ),
)

#: Defect classes by name.
DEFECTS: dict[str, Defect] = {d.name: d for d in _CATALOGUE}


def rate(name: str) -> float:
    """The injection rate of defect class ``name``."""
    return DEFECTS[name].rate
