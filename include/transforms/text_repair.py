"""The one repair rule for mis-encoded legacy text (mojibake), and its batch form.

Legacy messages, comments and task notes are multilingual (English, Japanese, Thai) and are
kept exactly as written, except for one documented defect (legacy-system.md §1c #19): text
whose UTF-8 bytes were once decoded as Latin-1 or Windows-1252, so that ``café`` reads
``cafÃ©`` and ``don’t`` reads ``donâ€™t``. The rule:

1. A text is a *candidate* only if it matches :data:`MOJIBAKE_CANDIDATE_PATTERN`: a C1
   control character, or a character that a UTF-8 lead byte becomes under Latin-1
   (``Â``..``ô``) directly followed by one a continuation byte becomes (U+0080..U+00BF, or
   the Windows-1252 characters of bytes 0x80..0x9F). Clean text, including every Japanese
   and Thai text and ordinary accented words (``São``, ``año``), is never touched.
2. A candidate goes through ftfy's encoding fixer only (:data:`FTFY_CONFIG`: no quote
   uncurling, no HTML unescaping, no normalisation, no line-break or width changes), which
   re-decodes the mis-decoded sequences and leaves the text alone when its heuristics see
   no mojibake.
3. The caller keeps the original in ``metadata`` whenever the text changed.

The pattern is a POSIX bracket expression that PostgreSQL's ``~`` and Python's :mod:`re`
read the same way, so the transform step selects candidates in SQL and only those rows
travel through Python (a test runs both on the same strings).

This module is pure: no Airflow, no database driver.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

import ftfy

#: The characters Windows-1252 gives bytes 0x80..0x9F (continuation bytes of UTF-8 text
#: decoded with it instead of Latin-1).
_WINDOWS_1252_HIGH = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"

#: Text that may be mojibake; see the module docstring. Literal characters, no escapes, so
#: the same string is a valid pattern for PostgreSQL and Python.
MOJIBAKE_CANDIDATE_PATTERN = (
    "[\u0080-\u009f]|[\u00c2-\u00f4][\u0080-\u00bf" + _WINDOWS_1252_HIGH + "]"
)

#: ftfy reduced to re-decoding mis-decoded text: everything that would change correctly
#: encoded text (quotes, HTML entities, Unicode normalisation, control characters, line
#: breaks, full-width forms, ligatures) is off.
FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_encoding=True,
    restore_byte_a0=False,
    replace_lossy_sequences=True,
    decode_inconsistent_utf8=True,
    fix_c1_controls=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

_CANDIDATE = re.compile(MOJIBAKE_CANDIDATE_PATTERN)

K = TypeVar("K")


def is_candidate(text: str) -> bool:
    """Whether ``text`` may be mojibake (the Python twin of the SQL candidate filter)."""
    return _CANDIDATE.search(text) is not None


def repair_text(text: str) -> str:
    """``text`` with mis-decoded UTF-8 re-decoded; unchanged unless it is a candidate."""
    if not is_candidate(text):
        return text
    return ftfy.fix_text(text, FTFY_CONFIG)


def repair_batch(rows: Iterable[tuple[K, str | None]]) -> list[tuple[K, str]]:
    """Repair a batch of ``(key, text)`` pairs; return only the pairs whose text changed.

    Args:
        rows: keys (legacy ids) with their text; ``None`` texts are skipped.

    Returns:
        ``(key, repaired text)`` for every row the rule changed, in input order.
    """
    changed: list[tuple[K, str]] = []
    for key, text in rows:
        if text is None:
            continue
        repaired = repair_text(text)
        if repaired != text:
            changed.append((key, repaired))
    return changed
