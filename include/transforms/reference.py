"""Code maps from the legacy system's integers and free text to the target's values.

Every map here is plain, typed data. The transform step (``migration_ops.transform``) copies
the maps an entity declares (``EntitySpec.reference_tables``) into temporary tables of the
same name, so the set-based transform SQL joins them instead of hard-coding ``case`` lists;
the same data is unit-tested here without a database.

Sources of the codes: ``legacy-system.md`` §1a (``dispatch_patient.sex``/``status``,
``dispatch_course`` ids, ``dispatch_office.country`` values), §1b (group ids → profile types).

This module is pure: no Airflow, no database driver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --------------------------------------------------------------------------- target enums
#: Labels of the target enum ``public.profile_type`` (``unclassified``: no rule typed the user).
PROFILE_TYPES: tuple[str, ...] = (
    "patient",
    "doctor",
    "technician",
    "master",
    "admin",
    "sales_person",
    "support_agent",
    "unclassified",
)
#: Profile types of Brius employees; RLS lets them read every profile and office.
STAFF_PROFILE_TYPES: tuple[str, ...] = (
    "technician",
    "master",
    "admin",
    "sales_person",
    "support_agent",
)
#: Labels of the target enum ``public.gender``.
GENDERS: tuple[str, ...] = ("male", "female", "other", "unknown")
#: Labels of the target enum ``public.patient_status``.
PATIENT_STATUSES: tuple[str, ...] = ("active", "on_hold", "archived")


@dataclass(frozen=True)
class ReferenceTable:
    """A code map made available to transform SQL as a temporary table.

    Attributes:
        name: table name, also the key in :data:`REFERENCE_TABLES`.
        description: what the map is for and where its codes come from.
        columns: ``(column name, PostgreSQL type)`` pairs, in row order.
        rows: the rows, each a tuple matching ``columns``.
    """

    name: str
    description: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[object, ...], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the columns, in order."""
        return tuple(name for name, _ in self.columns)

    def as_dicts(self) -> list[dict[str, object]]:
        """Rows as ``{column: value}`` dictionaries (for tests and docs)."""
        names = self.column_names
        return [dict(zip(names, row, strict=True)) for row in self.rows]


# --------------------------------------------------------------------------- countries
#: USPS state and territory codes: a two-letter "country" equal to one of these is ambiguous.
US_STATE_CODES: frozenset[str] = frozenset(
    """AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH
    NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC AS GU MP PR VI""".split()
)


@dataclass(frozen=True)
class Country:
    """One ISO 3166-1 country and the spellings that mean it in ``dispatch_office.country``.

    Attributes:
        code: ISO 3166-1 alpha-2 code (upper case).
        name: English short name.
        aliases: other spellings (the name, alpha-2 and alpha-3 codes are always added).
        alpha3: ISO 3166-1 alpha-3 code.
    """

    code: str
    name: str
    alpha3: str
    aliases: tuple[str, ...] = ()

    def spellings(self) -> tuple[str, ...]:
        """Every spelling of the country: name, codes and aliases.

        The alpha-2 code is left out when it is also a US state code (``IN`` Indiana or India,
        ``CA`` California or Canada, ...): a wrong country is worse than none, and an
        unrecognised value keeps its raw text for a human.
        """
        codes = (self.alpha3,) if self.code in US_STATE_CODES else (self.code, self.alpha3)
        return (self.name, *codes, *self.aliases)


#: Countries recognised in ``dispatch_office.country``. The legacy data holds "USA", India,
#: Japan, Thailand, Vietnam, Australia, Philippines, Singapore, France, New Zealand and NULL
#: (legacy-system.md §1c #8); the others are markets an orthodontic lab plausibly serves.
#: Deliberately absent: names that are also US states or common words (Georgia; "NO" for
#: Norway reads as "no"), and alpha-2 codes that are US state codes (see :meth:`spellings`).
COUNTRIES: tuple[Country, ...] = (
    Country(
        "US",
        "United States",
        "USA",
        (
            "U.S.A.",
            "U.S.",
            "United States of America",
            "United States of America (USA)",
            "America",
            "U.S. of A.",
            "Unites States",
            "Untied States",
        ),
    ),
    Country("IN", "India", "IND", ("Republic of India", "Bharat")),
    Country("JP", "Japan", "JPN", ("Nippon", "Nihon")),
    Country("TH", "Thailand", "THA", ("Kingdom of Thailand", "Thai")),
    Country("VN", "Vietnam", "VNM", ("Viet Nam", "Việt Nam", "Socialist Republic of Vietnam")),
    Country("AU", "Australia", "AUS", ("Commonwealth of Australia",)),
    Country(
        "PH",
        "Philippines",
        "PHL",
        (
            "The Philippines",
            "Phillipines",
            "Philipines",
            "Phillippines",
            "Republic of the Philippines",
        ),
    ),
    Country("SG", "Singapore", "SGP", ("Republic of Singapore",)),
    Country("FR", "France", "FRA", ("French Republic",)),
    Country("NZ", "New Zealand", "NZL", ("Aotearoa",)),
    Country("CA", "Canada", "CAN"),
    Country("MX", "Mexico", "MEX", ("México", "United Mexican States")),
    Country(
        "GB",
        "United Kingdom",
        "GBR",
        (
            "UK",
            "U.K.",
            "Great Britain",
            "Britain",
            "England",
            "Scotland",
            "Wales",
            "Northern Ireland",
        ),
    ),
    Country("IE", "Ireland", "IRL", ("Republic of Ireland", "Eire")),
    Country("DE", "Germany", "DEU", ("Deutschland",)),
    Country("ES", "Spain", "ESP", ("España", "Espana")),
    Country("IT", "Italy", "ITA", ("Italia",)),
    Country("NL", "Netherlands", "NLD", ("The Netherlands", "Holland")),
    Country("BE", "Belgium", "BEL"),
    Country("CH", "Switzerland", "CHE", ("Schweiz", "Suisse")),
    Country("AT", "Austria", "AUT", ("Österreich",)),
    Country("SE", "Sweden", "SWE"),
    Country("DK", "Denmark", "DNK"),
    Country("FI", "Finland", "FIN"),
    Country("PT", "Portugal", "PRT"),
    Country("PL", "Poland", "POL"),
    Country("GR", "Greece", "GRC"),
    Country("TR", "Turkey", "TUR", ("Türkiye", "Turkiye")),
    Country("IL", "Israel", "ISR"),
    Country("AE", "United Arab Emirates", "ARE", ("UAE", "U.A.E.", "Emirates")),
    Country("SA", "Saudi Arabia", "SAU", ("KSA", "Kingdom of Saudi Arabia")),
    Country("CN", "China", "CHN", ("People's Republic of China", "PRC", "P.R. China")),
    Country("HK", "Hong Kong", "HKG", ("Hong Kong SAR", "HongKong")),
    Country("TW", "Taiwan", "TWN", ("Republic of China", "Taiwan ROC")),
    Country(
        "KR",
        "South Korea",
        "KOR",
        ("Korea", "Republic of Korea", "Korea, Republic of", "Korea (South)", "ROK"),
    ),
    Country("MY", "Malaysia", "MYS"),
    Country("ID", "Indonesia", "IDN"),
    Country("KH", "Cambodia", "KHM"),
    Country("MM", "Myanmar", "MMR", ("Burma",)),
    Country("LA", "Laos", "LAO", ("Lao PDR", "Lao People's Democratic Republic")),
    Country("BD", "Bangladesh", "BGD"),
    Country("LK", "Sri Lanka", "LKA"),
    Country("NP", "Nepal", "NPL"),
    Country("PK", "Pakistan", "PAK"),
    Country("BR", "Brazil", "BRA", ("Brasil",)),
    Country("AR", "Argentina", "ARG"),
    Country("CL", "Chile", "CHL"),
    Country("CO", "Colombia", "COL"),
    Country("PE", "Peru", "PER", ("Perú",)),
    Country("ZA", "South Africa", "ZAF", ("RSA",)),
    Country("EG", "Egypt", "EGY"),
)

_NOT_ASCII_LETTER = re.compile(r"[^A-Za-z]+")

#: The SQL twin of :func:`country_key`; the offices transform uses exactly this expression.
COUNTRY_KEY_SQL = "nullif(lower(regexp_replace({column}, '[^A-Za-z]+', '', 'g')), '')"


def country_key(text: str | None) -> str | None:
    """Matching key of a country spelling: its ASCII letters only, lower-cased.

    ``'U.S.A.'``, ``' usa '`` and ``'USA'`` all give ``'usa'``; ``'United States'`` gives
    ``'unitedstates'``. Non-ASCII letters are dropped *before* lower-casing, so the result does
    not depend on the locale (PostgreSQL's ``lower`` follows the database collation). Text
    without any ASCII letter gives ``None``.

    Mirrors :data:`COUNTRY_KEY_SQL`.
    """
    if text is None:
        return None
    key = _NOT_ASCII_LETTER.sub("", text).lower()
    return key or None


def _country_rows() -> tuple[tuple[object, ...], ...]:
    rows: dict[str, tuple[str, str]] = {}
    for country in COUNTRIES:
        for spelling in country.spellings():
            key = country_key(spelling)
            if key is None:
                raise ValueError(f"spelling {spelling!r} of {country.code} has no ASCII letters")
            previous = rows.get(key)
            if previous is not None and previous[0] != country.code:
                raise ValueError(
                    f"spelling key {key!r} means both {previous[0]} and {country.code}"
                )
            rows[key] = (country.code, country.name)
    return tuple((key, code, name) for key, (code, name) in sorted(rows.items()))


def country_code(text: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code for a free-text country, or ``None`` if unrecognised."""
    key = country_key(text)
    if key is None:
        return None
    return _COUNTRY_BY_KEY.get(key)


# --------------------------------------------------------------------------- the maps
REF_COUNTRY = ReferenceTable(
    name="ref_country",
    description=(
        "dispatch_office.country spellings → ISO 3166-1 alpha-2. Matched on country_key(): "
        "ASCII letters only, lower-cased (so case, spaces and dots do not matter)."
    ),
    columns=(("country_key", "text"), ("country_code", "text"), ("country_name", "text")),
    rows=_country_rows(),
)
_COUNTRY_BY_KEY: dict[str, str] = {str(row[0]): str(row[1]) for row in REF_COUNTRY.rows}

REF_GROUP_PROFILE_TYPE = ReferenceTable(
    name="ref_group_profile_type",
    description=(
        "auth_group id → profile type (legacy-system.md §1b, final rule). A user in several "
        "mapped groups gets the type of the highest group id; unmapped groups are ignored. "
        "ahead_of_flags: §1b lists groups 2, 11, 4 and 5 before is_superuser/is_staff and "
        "group 1 (patients) after them, so a staff account in the patients' group is staff."
    ),
    columns=(("group_id", "integer"), ("profile_type", "text"), ("ahead_of_flags", "boolean")),
    rows=(
        (1, "patient", False),
        (2, "doctor", True),
        (4, "admin", True),
        (5, "master", True),
        (11, "technician", True),
    ),
)

REF_SEX = ReferenceTable(
    name="ref_sex",
    description=(
        "dispatch_patient.sex integer → gender (legacy-system.md §1a: 1 male, 2 female, "
        "0 other). NULL stays NULL; any other code is unknown to us → NULL, raw kept."
    ),
    columns=(("sex", "integer"), ("gender", "text")),
    rows=((0, "other"), (1, "male"), (2, "female")),
)

REF_PATIENT_STATUS = ReferenceTable(
    name="ref_patient_status",
    description=(
        "dispatch_patient.status integer → patient status (legacy-system.md §1a: 1/4 active, "
        "2 on hold, 10 archived). canonical = false marks codes that share a target value "
        "with another code (4 → active), so the raw code is kept in metadata."
    ),
    columns=(("status", "integer"), ("patient_status", "text"), ("canonical", "boolean")),
    rows=(
        (1, "active", True),
        (2, "on_hold", True),
        (4, "active", False),
        (10, "archived", True),
    ),
)

REF_COURSE_ORDER_TYPE = ReferenceTable(
    name="ref_course_order_type",
    description=(
        "dispatch_course id → order type code (legacy-system.md §1a: 1 main, 2 refinement, "
        "3 replacement, 4 any, 7 invoice, 8 merchandise). Only main, refinement and "
        "replacement are real order types; other known courses are kept as non-order types. "
        "Courses not listed here become 'course_<id>'."
    ),
    columns=(
        ("course_id", "integer"),
        ("code", "text"),
        ("name", "text"),
        ("is_order_type", "boolean"),
    ),
    rows=(
        (1, "main", "Main", True),
        (2, "refinement", "Refinement", True),
        (3, "replacement", "Replacement", True),
        (4, "any", "Any", False),
        (7, "invoice", "Invoice", False),
        (8, "merchandise", "Merchandise", False),
    ),
)

#: Standard order types seeded in ``public.order_types`` (code, name), all ``is_order_type``.
STANDARD_ORDER_TYPES: tuple[tuple[str, str], ...] = (
    ("main", "Main"),
    ("refinement", "Refinement"),
    ("replacement", "Replacement"),
    ("retainer", "Retainer"),
    ("emergency", "Emergency"),
)

REFERENCE_TABLES: dict[str, ReferenceTable] = {
    table.name: table
    for table in (
        REF_COUNTRY,
        REF_GROUP_PROFILE_TYPE,
        REF_SEX,
        REF_PATIENT_STATUS,
        REF_COURSE_ORDER_TYPE,
    )
}


def profile_type_for_groups(group_ids: set[int] | frozenset[int]) -> str | None:
    """Profile type given by a user's groups alone: the mapped group with the highest id wins.

    Flags and patient rows are the transform's business (``transform/profiles.sql``).
    """
    mapped = {int(str(row[0])): str(row[1]) for row in REF_GROUP_PROFILE_TYPE.rows}
    hits = sorted((g for g in group_ids if g in mapped), reverse=True)
    return mapped[hits[0]] if hits else None


def course_code(course_id: int) -> str:
    """Order type code of a ``dispatch_course`` id (``course_<id>`` when not a known course)."""
    for row in REF_COURSE_ORDER_TYPE.rows:
        if row[0] == course_id:
            return str(row[1])
    return f"course_{course_id}"


# Phase 2, 3 and 4 maps live in their own modules and add themselves to REFERENCE_TABLES
# (they import ReferenceTable from here, so they are imported last).
import include.transforms.phase2_codes  # noqa: E402, F401
import include.transforms.phase3_codes  # noqa: E402, F401
import include.transforms.phase4_codes  # noqa: E402, F401
