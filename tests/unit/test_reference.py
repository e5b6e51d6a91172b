"""Unit tests of the code maps and value patterns (no database)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.entities.phase1_core import PHASE_1
from include.entities.spec import EntitySpec
from include.transforms import patterns
from include.transforms.reference import (
    COUNTRIES,
    COUNTRY_KEY_SQL,
    GENDERS,
    PATIENT_STATUSES,
    PROFILE_TYPES,
    REF_COUNTRY,
    REF_COURSE_ORDER_TYPE,
    REF_GROUP_PROFILE_TYPE,
    REF_PATIENT_STATUS,
    REF_SEX,
    REFERENCE_TABLES,
    STAFF_PROFILE_TYPES,
    STANDARD_ORDER_TYPES,
    US_STATE_CODES,
    ReferenceTable,
    country_code,
    country_key,
    course_code,
    profile_type_for_groups,
)

ROOT = Path(__file__).resolve().parents[2]
SQL = ROOT / "include" / "sql"
PY_TYPES = {"integer": int, "text": str, "boolean": bool}


# ------------------------------------------------------------------ the registry
def _entity_specs() -> list[EntitySpec]:
    """Every entity spec defined in ``include/entities``, registered in a phase yet or not."""
    import include.entities as package

    specs: list[EntitySpec] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"include.entities.{info.name}")
        specs += [value for value in vars(module).values() if isinstance(value, EntitySpec)]
    return specs


def test_registry_has_exactly_the_declared_maps() -> None:
    assert {
        "ref_country",
        "ref_group_profile_type",
        "ref_sex",
        "ref_patient_status",
        "ref_course_order_type",
    } <= {name for entity in PHASE_1.entities for name in entity.reference_tables}
    declared = {name for entity in _entity_specs() for name in entity.reference_tables}
    assert declared == set(REFERENCE_TABLES)


@pytest.mark.parametrize("table", list(REFERENCE_TABLES.values()), ids=lambda t: t.name)
def test_reference_table_is_well_formed(table: ReferenceTable) -> None:
    assert REFERENCE_TABLES[table.name] is table
    assert table.description
    assert table.rows, "a code map without rows"
    for row in table.rows:
        assert len(row) == len(table.columns)
        for value, (column, pg_type) in zip(row, table.columns, strict=True):
            assert type(value) is PY_TYPES[pg_type], (table.name, column, value)
    keys = [row[0] for row in table.rows]
    assert len(keys) == len(set(keys)), f"{table.name}: duplicate lookup key"
    assert [d[table.columns[0][0]] for d in table.as_dicts()] == keys


def test_reference_module_is_pure() -> None:
    code = (
        "import sys, include.transforms.reference, include.transforms.patterns;"
        "bad = [m for m in sys.modules if m.split('.')[0] in"
        " ('airflow', 'psycopg', 'psycopg2', 'sqlalchemy', 'great_expectations')];"
        "print(*bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ values are target enum labels
def test_mapped_values_are_target_enum_labels() -> None:
    assert {row[1] for row in REF_GROUP_PROFILE_TYPE.rows} <= set(PROFILE_TYPES)
    assert set(STAFF_PROFILE_TYPES) <= set(PROFILE_TYPES)
    assert {"patient", "doctor", "unclassified"}.isdisjoint(STAFF_PROFILE_TYPES)
    assert {row[1] for row in REF_SEX.rows} <= set(GENDERS)
    assert {row[1] for row in REF_PATIENT_STATUS.rows} <= set(PATIENT_STATUSES)


def test_enum_labels_match_the_target_ddl() -> None:
    ddl = (SQL / "target" / "100_phase1_core.sql").read_text()
    for type_name, labels in (
        ("profile_type", PROFILE_TYPES),
        ("gender", GENDERS),
        ("patient_status", PATIENT_STATUSES),
    ):
        match = re.search(rf"create type public\.{type_name} as enum \((.*?)\);", ddl, re.S)
        assert match, type_name
        assert tuple(re.findall(r"'([a-z_]+)'", match.group(1))) == labels


# ------------------------------------------------------------------ documented codes
def test_documented_legacy_codes() -> None:
    assert dict((r[0], r[1]) for r in REF_GROUP_PROFILE_TYPE.rows) == {
        1: "patient",
        2: "doctor",
        4: "admin",
        5: "master",
        11: "technician",
    }
    assert dict((r[0], r[1]) for r in REF_SEX.rows) == {0: "other", 1: "male", 2: "female"}
    statuses = {r[0]: (r[1], r[2]) for r in REF_PATIENT_STATUS.rows}
    assert statuses == {
        1: ("active", True),
        2: ("on_hold", True),
        4: ("active", False),
        10: ("archived", True),
    }
    # one canonical code per target value, so the raw code is recoverable or kept
    canonical = [value for value, is_canonical in statuses.values() if is_canonical]
    assert sorted(canonical) == sorted(set(PATIENT_STATUSES))


def test_course_codes() -> None:
    assert [course_code(i) for i in (1, 2, 3, 4, 7, 8)] == [
        "main",
        "refinement",
        "replacement",
        "any",
        "invoice",
        "merchandise",
    ]
    assert course_code(5) == "course_5"
    order_types = {r[1] for r in REF_COURSE_ORDER_TYPE.rows if r[3]}
    assert order_types == {"main", "refinement", "replacement"}
    # the real order types are seeded, so legacy courses merge into them by code
    assert order_types <= {code for code, _ in STANDARD_ORDER_TYPES}
    for row in REF_COURSE_ORDER_TYPE.rows:
        assert re.fullmatch(patterns.ORDER_TYPE_CODE_PATTERN, str(row[1]))


@given(st.integers(min_value=1, max_value=2**31 - 1))
def test_every_course_id_gets_a_valid_code(course_id: int) -> None:
    assert re.fullmatch(patterns.ORDER_TYPE_CODE_PATTERN, course_code(course_id))


def test_seeded_order_types_match_the_ddl() -> None:
    ddl = (SQL / "target" / "100_phase1_core.sql").read_text()
    seeded = re.findall(r"\('([a-z_]+)', '([A-Za-z ]+)', true\)", ddl)
    assert tuple(seeded) == STANDARD_ORDER_TYPES


# ------------------------------------------------------------------ group typing
def test_highest_mapped_group_wins() -> None:
    assert profile_type_for_groups({1, 2, 11}) == "technician"
    assert profile_type_for_groups({4, 5}) == "master"
    assert profile_type_for_groups({1, 2}) == "doctor"
    assert profile_type_for_groups({3, 6}) is None  # unmapped groups are ignored
    assert profile_type_for_groups({2, 99}) == "doctor"
    assert profile_type_for_groups(set()) is None


#: legacy-system.md §1b written out here, not read from the map the code uses: a wrong row in
#: ``REF_GROUP_PROFILE_TYPE`` must make the property fail.
DOCUMENTED_GROUP_TYPES = {1: "patient", 2: "doctor", 4: "admin", 5: "master", 11: "technician"}


@given(st.sets(st.integers(min_value=0, max_value=20)))
def test_group_typing_property(groups: set[int]) -> None:
    hits = groups & set(DOCUMENTED_GROUP_TYPES)
    expected = DOCUMENTED_GROUP_TYPES[max(hits)] if hits else None
    assert profile_type_for_groups(groups) == expected


def test_only_the_patients_group_comes_after_the_flags() -> None:
    """§1b: groups 2, 11, 4, 5 → is_superuser → is_staff → group 1 → a patient row."""
    after_flags = {int(str(r[0])) for r in REF_GROUP_PROFILE_TYPE.rows if r[2] is False}
    ahead = {int(str(r[0])) for r in REF_GROUP_PROFILE_TYPE.rows if r[2] is True}
    assert (after_flags, ahead) == ({1}, {2, 4, 5, 11})


# ------------------------------------------------------------------ countries
@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("USA", "US"),
        ("US", "US"),
        ("U.S.A.", "US"),
        ("u.s.", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("  usa  ", "US"),
        ("Japan", "JP"),
        ("JP", "JP"),
        ("japan", "JP"),
        ("India", "IN"),
        ("Thailand", "TH"),
        ("Vietnam", "VN"),
        ("Viet Nam", "VN"),
        ("Việt Nam", "VN"),
        ("Australia", "AU"),
        ("Philippines", "PH"),
        ("Phillipines", "PH"),
        ("Singapore", "SG"),
        ("France", "FR"),
        ("New Zealand", "NZ"),
        ("new-zealand", "NZ"),
        ("UK", "GB"),
        ("Korea, Republic of", "KR"),
    ],
)
def test_documented_country_spellings(raw: str, code: str) -> None:
    assert country_code(raw) == code


@pytest.mark.parametrize("raw", [None, "", "   ", "...", "Atlantis", "日本", "IN", "CA", "Georgia"])
def test_unrecognised_or_ambiguous_countries(raw: str | None) -> None:
    assert country_code(raw) is None


def test_country_table_shape() -> None:
    codes = [c.code for c in COUNTRIES]
    assert len(codes) == len(set(codes))
    for country in COUNTRIES:
        assert re.fullmatch(patterns.COUNTRY_CODE_PATTERN, country.code)
        assert re.fullmatch(r"[A-Z]{3}", country.alpha3)
        assert country_code(country.name) == country.code
        assert country_code(country.alpha3) == country.code
        expected = None if country.code in US_STATE_CODES else country.code
        assert country_code(country.code) == expected
    for key, code, name in REF_COUNTRY.rows:
        assert key == country_key(str(key)), "keys are stored normalised"
        assert country_code(str(key)) == code
        assert isinstance(name, str) and name


def test_country_key_sql_is_used_by_the_offices_transform() -> None:
    transform = (SQL / "transform" / "offices.sql").read_text()
    assert COUNTRY_KEY_SQL.format(column="s.country") in transform


def _respell(text: str, data: st.DataObject) -> str:
    """Random case, and random spaces/dots/dashes between characters and around the text."""
    noise = st.text(alphabet=" .-\t", max_size=2)
    out = [data.draw(noise)]
    for char in text:
        out.append(char.upper() if data.draw(st.booleans()) else char.lower())
        out.append(data.draw(noise))
    return "".join(out)


@given(st.sampled_from([(c, s) for c in COUNTRIES for s in c.spellings()]), st.data())
def test_country_lookup_ignores_case_spaces_and_punctuation(pair, data) -> None:
    country, spelling = pair
    assert country_code(_respell(spelling, data)) == country.code


@given(st.text())
def test_country_key_is_normalised(text: str) -> None:
    key = country_key(text)
    if key is not None:
        assert re.fullmatch(r"[a-z]+", key)
        assert country_key(key) == key
        ascii_upper = "".join(c.upper() if c.isascii() else c for c in text)
        assert country_key(ascii_upper) == key


# ------------------------------------------------------------------ patterns
@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (" Dr.Smith@Clinic.COM ", "dr.smith@clinic.com"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("a+tag@sub.example.co.jp", "a+tag@sub.example.co.jp"),
        ("", None),
        ("not-an-email", None),
        ("john@clinic", None),
        ("john smith@clinic.com", None),
        ("john@@clinic.com", None),
        ("john..doe@clinic.com", None),
        (".john@clinic.com", None),
        ("john@clinic,com", None),
        (None, None),
    ],
)
def test_clean_email(raw: str | None, clean: str | None) -> None:
    assert patterns.clean_email(raw) == clean


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("00BB", True),
        ("51Bn", True),
        (" 51Bn ", True),
        ("51Bnx", False),
        ("5-Bn", False),
        ("", False),
    ],
)
def test_suffix(raw: str, valid: bool) -> None:
    assert patterns.is_valid_suffix(raw) is valid


def test_patterns_are_the_ones_in_sql_and_suites() -> None:
    profiles_sql = (SQL / "transform" / "profiles.sql").read_text()
    for pattern in (
        patterns.EMAIL_PATTERN,
        patterns.SUFFIX_PATTERN,
        patterns.INTERNAL_EMAIL_DOMAIN_PATTERN,
        patterns.DEMO_MARKER_PATTERN,
    ):
        assert patterns.sql_literal(pattern) in profiles_sql, pattern
    ddl = (SQL / "target" / "100_phase1_core.sql").read_text()
    for pattern in (
        patterns.SUFFIX_PATTERN,
        patterns.COUNTRY_CODE_PATTERN,
        patterns.ORDER_TYPE_CODE_PATTERN,
    ):
        assert patterns.sql_literal(pattern) in ddl, pattern

    def regexes(suite: str) -> dict[str, str]:
        data = json.loads((ROOT / "expectations" / suite).read_text())
        return {
            e["kwargs"]["column"]: e["kwargs"]["regex"]
            for e in data["expectations"]
            if e["type"] == "expect_column_values_to_match_regex"
        }

    assert regexes("profiles.json") == {
        "email": patterns.EMAIL_PATTERN,
        "patient_suffix": patterns.SUFFIX_PATTERN,
    }
    assert regexes("offices.json") == {"country_code": patterns.COUNTRY_CODE_PATTERN}
    assert regexes("order_types.json") == {"code": patterns.ORDER_TYPE_CODE_PATTERN}
