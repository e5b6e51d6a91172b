"""Phase 3 code maps: the message type catalog and the dispatch_record.type map (no database)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from include.transforms.phase3_codes import (
    DEFAULT_MESSAGE_TYPE,
    MESSAGE_TYPES,
    PLAN_COMMENT_MESSAGE_TYPE,
    REF_RECORD_MESSAGE_TYPE,
    message_type_for_record,
)
from include.transforms.reference import REFERENCE_TABLES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "include/sql/target/300_phase3_communication.sql").read_text(encoding="utf-8")


def test_catalog_has_the_standard_types_and_the_plan_comment_type() -> None:
    codes = [t.code for t in MESSAGE_TYPES]
    assert codes[:6] == [
        "general", "status_update", "question", "instruction", "clinical_note", "support",
    ]  # fmt: skip
    assert len(set(codes)) == len(codes)
    assert {DEFAULT_MESSAGE_TYPE, PLAN_COMMENT_MESSAGE_TYPE} <= set(codes)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code) for code in codes)


def test_schema_seeds_every_catalog_row_literally() -> None:
    for message_type in MESSAGE_TYPES:
        assert f"('{message_type.code}', '{message_type.name}'," in SCHEMA, message_type.code
        assert f"'{message_type.description}'" in SCHEMA.replace("\n     '", " '"), (
            message_type.code
        )


def test_documented_codes_map_and_everything_else_is_general() -> None:
    assert {c: message_type_for_record(c) for c in (3, 5, 6, 8)} == {
        3: "support",
        5: "clinical_note",
        6: "general",
        8: "status_update",
    }
    assert message_type_for_record(None) == DEFAULT_MESSAGE_TYPE
    assert {str(row[1]) for row in REF_RECORD_MESSAGE_TYPE.rows} <= {t.code for t in MESSAGE_TYPES}
    assert REFERENCE_TABLES[REF_RECORD_MESSAGE_TYPE.name] is REF_RECORD_MESSAGE_TYPE


@given(st.integers(-(2**31), 2**31 - 1).filter(lambda c: c not in (3, 5, 6, 8)))
def test_any_undocumented_code_is_general(code: int) -> None:
    assert message_type_for_record(code) == DEFAULT_MESSAGE_TYPE
