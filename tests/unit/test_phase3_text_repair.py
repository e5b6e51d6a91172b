"""The mojibake repair rule: what it repairs, what it never touches, and its SQL twin."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sandbox.text import CLINICAL_EN, CLINICAL_NATIVE, mojibake
from include.transforms.text_repair import (
    MOJIBAKE_CANDIDATE_PATTERN,
    is_candidate,
    repair_batch,
    repair_text,
)
from migration_ops import local_env

#: Words that real multilingual clinical text holds: accents, typographic punctuation, CJK, Thai.
WORDS = (
    "café", "señora", "Muñoz", "naïve", "über", "São", "coração", "Jérôme", "Zoë", "Renée",
    "crème brûlée", "niño", "Łódź", "straße", "don’t", "“quoted”", "—", "…", "±0.2 mm", "20°C",
    "½", "矯正", "治療", "ฟัน", "tooth", "tray", "the", "and", "IPR", "22",
)  # fmt: skip
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=10).map(" ".join)


@given(texts)
def test_latin1_mojibake_round_trips(text: str) -> None:
    garbled = mojibake(text)  # UTF-8 bytes decoded as Latin-1, as the sandbox injects it
    if garbled != text:
        assert is_candidate(garbled)
        assert repair_text(garbled) == text


@given(texts)
def test_windows_1252_mojibake_round_trips(text: str) -> None:
    try:
        garbled = text.encode("utf-8").decode("windows-1252")
    except UnicodeDecodeError:  # bytes Windows-1252 leaves undefined: not this defect
        return
    assert repair_text(garbled) == text


@given(texts)
def test_clean_text_is_never_changed(text: str) -> None:
    assert repair_text(text) == text


@given(st.text())
def test_only_candidates_are_ever_changed(text: str) -> None:
    if not is_candidate(text):
        assert repair_text(text) == text


def test_sandbox_texts_kept_or_repaired_exactly() -> None:
    for sentence in (*CLINICAL_EN, *(s for group in CLINICAL_NATIVE.values() for s in group)):
        assert repair_text(sentence) == sentence
        assert not is_candidate(sentence)
    for sentence in ("Señora Muñoz requests a retainer.", "Dr. Müller approved the plan."):
        assert repair_text(mojibake(sentence)) == sentence


def test_batch_returns_only_changed_rows_in_order() -> None:
    rows = [(1, mojibake("café")), (2, "plain"), (3, None), (4, "矯正"), (5, mojibake("niño"))]
    assert repair_batch(rows) == [(1, "café"), (5, "niño")]


@pytest.fixture(scope="module")
def pg(pg_socket: str):
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        yield conn


@pytest.mark.e2e
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(), texts.map(mojibake)), min_size=1, max_size=50))
def test_sql_candidate_filter_agrees_with_python(pg, batch: list[str]) -> None:
    batch = [text.replace("\x00", "") for text in batch]  # PostgreSQL text holds no NUL
    rows = pg.execute(
        "select t ~ %s from unnest(%s::text[]) with ordinality as u (t, n) order by n",
        (MOJIBAKE_CANDIDATE_PATTERN, batch),
    ).fetchall()
    assert [r[0] for r in rows] == [is_candidate(text) for text in batch]
