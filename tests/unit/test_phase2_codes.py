"""Phase 2 code maps, MIME rules and their agreement with the DDL and SQL (no database)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.entities.phase2_relationships import PHASE_2
from include.transforms import mime
from include.transforms.phase2_codes import (
    FILE_FLAGS,
    JAW_FLAGS,
    ORDER_FLAGS,
    ORDER_STATUSES,
    PHASE2_REFERENCE_TABLES,
    PROJECT_FLAGS,
    PROJECT_STATUSES,
    PROJECT_TYPES,
    REF_MIME_TYPE,
    REF_ORDER_STATUS,
    REF_PROJECT_STATUS,
    REF_PROJECT_TYPE,
    order_status,
)
from include.transforms.reference import REFERENCE_TABLES

ROOT = Path(__file__).resolve().parents[2]
DDL = (ROOT / "include" / "sql" / "target" / "200_phase2_relationships.sql").read_text()
FILES_SQL = (ROOT / "include" / "sql" / "transform" / "files.sql").read_text()
PY_TYPES = {"integer": int, "text": str, "boolean": bool}


def test_maps_are_registered_and_declared_by_the_specs() -> None:
    for name, table in PHASE2_REFERENCE_TABLES.items():
        assert REFERENCE_TABLES[name] is table
    declared = {name for entity in PHASE_2.entities for name in entity.reference_tables}
    assert declared == set(PHASE2_REFERENCE_TABLES)


@pytest.mark.parametrize("table", list(PHASE2_REFERENCE_TABLES.values()), ids=lambda t: t.name)
def test_map_is_well_formed(table) -> None:
    assert table.description and table.rows
    for row in table.rows:
        for value, (_, pg_type) in zip(row, table.columns, strict=True):
            assert type(value) is PY_TYPES[pg_type]
    keys = [row[0] for row in table.rows]
    assert len(keys) == len(set(keys)), "one target value per legacy code"


def test_documented_codes() -> None:
    assert dict(REF_ORDER_STATUS.rows) == {
        0: "no_product",
        1: "submitted",
        2: "approved",
        4: "shipped",
    }
    assert dict(REF_PROJECT_TYPE.rows) == {0: "unspecified", 3: "treatment_plan"}
    assert dict(REF_PROJECT_STATUS.rows) == {0: "active"}
    assert order_status(4) == "shipped"
    assert order_status(3) is None, "undocumented codes are never guessed"


def _enum(name: str) -> tuple[str, ...]:
    match = re.search(rf"create type public\.{name} as enum \((.*?)\);", DDL, re.S)
    assert match, name
    return tuple(re.findall(r"'([a-z_]+)'", match.group(1)))


def test_enum_labels_match_the_target_ddl() -> None:
    assert _enum("order_status") == ORDER_STATUSES
    assert _enum("project_type") == PROJECT_TYPES
    assert _enum("project_status") == PROJECT_STATUSES
    assert {v for _, v in REF_ORDER_STATUS.rows} == set(ORDER_STATUSES)
    assert {v for _, v in REF_PROJECT_TYPE.rows} == set(PROJECT_TYPES)
    assert {v for _, v in REF_PROJECT_STATUS.rows} == set(PROJECT_STATUSES)


@pytest.mark.parametrize(
    ("table", "flags"),
    [
        ("jaws", JAW_FLAGS),
        ("orders", ORDER_FLAGS),
        ("projects", PROJECT_FLAGS),
        ("files", FILE_FLAGS),
    ],
)
def test_flag_vocabularies_match_the_target_checks(table: str, flags: tuple[str, ...]) -> None:
    match = re.search(
        rf"constraint {table}_flags_known check \(\s*flags <@ array\[(.*?)\]", DDL, re.S
    )
    assert match, table
    assert tuple(re.findall(r"'([a-z_]+)'", match.group(1))) == flags
    transform = (ROOT / "include" / "sql" / "transform" / f"{table}.sql").read_text()
    emitted = set(re.findall(r"then '([a-z_]+)' end", transform))
    assert emitted == set(flags), "the transform emits exactly the flags the target accepts"


# ----------------------------------------------------------------------------- MIME rules
@pytest.mark.parametrize(
    ("name", "ext", "extension", "mime_type", "display"),
    [
        (
            "136062118_shell_occlusion_l.stl",
            "stl",
            "stl",
            "model/stl",
            "136062118_shell_occlusion_l.stl",
        ),
        ("scan_u", "STL", "stl", "model/stl", "scan_u.STL"),
        ("IMG_0042.JPG", "", "jpg", "image/jpeg", "IMG_0042.JPG"),
        ("report", ".pdf", "pdf", "application/pdf", "report.pdf"),
        ("archive", "tar.zip", "zip", "application/zip", "archive.tar.zip"),
        ("notes", None, None, mime.DEFAULT_MIME_TYPE, "notes"),
        ("weird", "exe!", None, mime.DEFAULT_MIME_TYPE, "weird.exe!"),
        ("cbct", "dcm", "dcm", "application/dicom", "cbct.dcm"),
        ("mesh", "ply", "ply", "application/x-ply", "mesh.ply"),
        ("  ", "png", "png", "image/png", "0f0e0d0c-0000-4000-8000-000000000001.png"),
        ("x.Stl", "stl", "stl", "model/stl", "x.Stl"),
    ],
)
def test_real_extension_mime_and_display_name(name, ext, extension, mime_type, display) -> None:
    uid = "0F0E0D0C-0000-4000-8000-000000000001"
    assert mime.real_extension(name, ext) == extension
    assert mime.mime_type(name, ext) == mime_type
    assert mime.display_name(name, ext, uid) == display


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@given(name=TEXT, ext=TEXT)
def test_extension_is_plain_lower_case_or_none(name: str, ext: str) -> None:
    extension = mime.real_extension(name, ext)
    assert extension is None or re.fullmatch(r"[a-z0-9]{1,10}", extension)
    assert mime.mime_type(name, ext) in {*mime.MIME_TYPES.values(), mime.DEFAULT_MIME_TYPE}


@given(
    stem=st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True),
    ext=st.sampled_from(["stl", "pdf", "jpg"]),
)
def test_the_double_extension_is_never_produced(stem: str, ext: str) -> None:
    once = mime.display_name(stem, ext, "u")
    assert once == f"{stem}.{ext}"
    assert mime.display_name(once, ext, "u") == once, "name already carrying its extension"
    assert mime.real_extension(once, ext) == ext


def test_mime_map_is_the_reference_table() -> None:
    assert dict(REF_MIME_TYPE.rows) == mime.MIME_TYPES
    assert all(re.fullmatch(r"[a-z0-9]{1,10}", ext) for ext in mime.MIME_TYPES)


def test_files_transform_carries_the_sql_twins_verbatim() -> None:
    assert mime.REAL_EXTENSION_SQL in FILES_SQL
    assert mime.DISPLAY_NAME_SQL in FILES_SQL
