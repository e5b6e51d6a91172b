"""Value formats shared by the transform SQL, the target's CHECK constraints and the suites.

The transform SQL (``include/sql/transform/*.sql``) and the Great Expectations suites
(``expectations/*.json``) are text files, so they carry these patterns literally; the unit
tests assert that each file holds exactly the pattern defined here, so the three can not
drift apart. Every pattern is a POSIX regular expression that PostgreSQL's ``~`` operator
and Python's :mod:`re` read the same way (except :data:`SUFFIX_PATTERN`, which uses a POSIX
class that Python lacks; :func:`is_valid_suffix` is its Python twin).

This module is pure: no Airflow, no database driver.
"""

from __future__ import annotations

import re

#: A deliberately plain e-mail address check (RFC 5322 dot-atom local part, dotted host with
#: a 2+ letter top-level domain), applied after trimming and lower-casing. Apostrophes are
#: legal (``o'brien@…``); spaces, commas, a missing domain or TLD are not.
EMAIL_PATTERN = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$"
)

#: dispatch_patient.suffix: a 4-character case code of letters and digits ('00BB', '51Bn').
SUFFIX_PATTERN = r"^[[:alnum:]]{4}$"

#: ISO 3166-1 alpha-2 code.
COUNTRY_CODE_PATTERN = r"^[A-Z]{2}$"

#: Order type code: lower-case identifier ('main', 'course_12').
ORDER_TYPE_CODE_PATTERN = r"^[a-z][a-z0-9_]*$"

#: E-mail domains of Brius itself: on a customer-side profile they mark a test account.
INTERNAL_EMAIL_DOMAIN_PATTERN = r"@([a-z0-9-]+\.)*(brius|mechanodontics)\.com$"

#: The word 'demo' in a username, e-mail or name marks a test account.
DEMO_MARKER_PATTERN = r"(^|[^a-z])demo([^a-z]|$)"

_EMAIL = re.compile(EMAIL_PATTERN)
_SUFFIX = re.compile(r"^[A-Za-z0-9]{4}$")


def clean_email(raw: str | None) -> str | None:
    """The address as the profiles transform keeps it: trimmed, lower-cased, valid, or None."""
    if raw is None:
        return None
    email = raw.strip(" \t\r\n").lower()
    return email if _EMAIL.fullmatch(email) else None


def is_valid_suffix(raw: str | None) -> bool:
    """Whether a trimmed dispatch_patient.suffix is kept (Python twin of SUFFIX_PATTERN).

    PostgreSQL's ``[[:alnum:]]`` also accepts non-ASCII letters under a UTF-8 locale; the
    legacy codes are ASCII ('00BB', '51Bn'), so the twin checks ASCII only.
    """
    return raw is not None and bool(_SUFFIX.fullmatch(raw.strip()))


def sql_literal(pattern: str) -> str:
    """The pattern as a SQL string literal (single quotes doubled), as the SQL files hold it."""
    return "'" + pattern.replace("'", "''") + "'"
