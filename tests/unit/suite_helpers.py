"""Shared helpers for the Great Expectations suite tests: reading suites, GX classes, columns."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from include.entities.spec import EntitySpec

ROOT = Path(__file__).resolve().parents[2]
RULE = re.compile(r"^[a-z_]+\.[a-z][a-z0-9_]*$")
#: Expectations that compare values as text: PostgreSQL has no enum = varchar operator, so
#: GX (which binds its values as VARCHAR) can not evaluate them on enum columns.
TEXT_COMPARING = re.compile(r"_(in_set|match_regex|match_like_pattern)(_list)?$")


def suite_of(entity: EntitySpec) -> dict[str, Any]:
    return json.loads((ROOT / "expectations" / entity.suite).read_text(encoding="utf-8"))


def expectations_of(entity: EntitySpec) -> list[dict[str, Any]]:
    return list(suite_of(entity)["expectations"])


def gx_class(type_name: str) -> type:
    warnings.filterwarnings("ignore", module="great_expectations")
    import great_expectations.expectations as gxe

    camel = "".join(part.capitalize() for part in type_name.split("_"))
    found = getattr(gxe, camel, None)
    assert isinstance(found, type), f"{type_name} is not an expectation of GX 1.24.1"
    return found


def referenced_columns(expectation: dict[str, Any]) -> set[str]:
    kwargs = expectation["kwargs"]
    columns = set()
    for name in ("column", "column_A", "column_B"):
        if name in kwargs:
            columns.add(kwargs[name])
    for name in ("column_list", "column_set"):
        columns.update(kwargs.get(name) or ())
    return columns
