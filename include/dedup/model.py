"""The record-linkage model: how each canonical role is compared, blocked and trained.

Plain data, read by :mod:`migration_ops.dedup.engine`, which turns it into a Splink
(Fellegi–Sunter) model on DuckDB. Changing how two values are judged similar, which pairs
are ever compared (blocking) or the default thresholds is an edit here, reviewed like any
other change; the engine has no field names of its own.

Why these choices (``docs/dedup.md`` has the long form):

* **Roles, not column names.** Any person data maps its columns onto these roles
  (``--field first_name=given_name``); a role that is not mapped is simply absent.
* **Comparison kinds** give each role graded levels, from exact to different, so a typo or
  a day/month swap in a date of birth is evidence *for* a match rather than a disagreement.
* **Blocking rules** decide which pairs are scored at all: each rule is an exact match on
  one or more roles, and a pair is scored when any rule holds. This keeps the work close
  to linear in the number of records (never all pairs) while a duplicate still needs only
  *one* of its fields to agree exactly to be found.
* **Training without labels**: the share of matches is estimated from strict deterministic
  rules, u from random pairs, m by expectation maximisation over the training blocking
  rules. When the data is too small to train (a few hundred records), the m priors below
  are used: they encode "a true duplicate usually agrees exactly, sometimes nearly".
"""

from __future__ import annotations

from dataclasses import dataclass

#: Canonical roles a field mapping may use, in the order comparisons are built.
ROLES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "birthdate",
    "sex",
    "email",
    "phone",
    "street_number",
    "address_1",
    "address_2",
    "city",
    "postcode",
    "state",
    "national_id",
    # Context roles: where a record was registered (legacy patients: treating doctor, office).
    # Weak evidence on their own, useful to tell two namesakes apart.
    "doctor",
    "office",
)


@dataclass(frozen=True)
class RoleModel:
    """How one role is normalised and compared.

    Attributes:
        kind: ``name`` (Jaro–Winkler levels), ``date`` (exact, day/month swapped, year off
            by one, one edit), ``exact``, ``email`` (exact, same user part, similar), ``edit``
            (Damerau–Levenshtein ≤ 1, ≤ 2) or ``text`` (Jaro–Winkler ≥ 0.9, ≥ 0.7).
        normalise: ``name`` (lower case, accents folded, spaces collapsed), ``date`` (ISO
            text; unparseable → missing), ``digits``, ``lower``, ``compact`` (lower case,
            no spaces) or ``text`` (trimmed).
    """

    kind: str
    normalise: str


MODEL: dict[str, RoleModel] = {
    "first_name": RoleModel("name", "name"),
    "last_name": RoleModel("name", "name"),
    "birthdate": RoleModel("date", "date"),
    "sex": RoleModel("exact", "lower"),
    "email": RoleModel("email", "lower"),
    "phone": RoleModel("edit", "digits"),
    "street_number": RoleModel("exact", "compact"),
    "address_1": RoleModel("text", "name"),
    "address_2": RoleModel("text", "name"),
    "city": RoleModel("text", "name"),
    "postcode": RoleModel("edit", "compact"),
    "state": RoleModel("exact", "compact"),
    "national_id": RoleModel("edit", "digits"),
    "doctor": RoleModel("exact", "text"),
    "office": RoleModel("exact", "text"),
}

#: m priors per comparison kind, most similar level first, "different" last (null excluded).
#: Used when the data is too small for expectation maximisation.
M_PRIORS: dict[str, tuple[float, ...]] = {
    "name": (0.86, 0.06, 0.03, 0.02, 0.03),
    # A second registration's date of birth is as often a year off as right, and often day
    # and month swapped: the legacy deduplicator allowed for exactly these two (§1e). With
    # the year-off level at 0.11 a duplicate registered by another doctor a year off fell
    # below the link threshold; 0.40 links it (docs/dedup.md, per variant).
    "date": (0.40, 0.12, 0.40, 0.04, 0.04),
    "exact": (0.95, 0.05),
    "email": (0.80, 0.08, 0.05, 0.07),
    "edit": (0.85, 0.07, 0.03, 0.05),
    "text": (0.85, 0.08, 0.04, 0.03),
}
#: u priors (how often two unrelated records fall in each level), same shapes as the m
#: priors: used only below ``MIN_RECORDS_FOR_U`` records, where a random sample would be
#: mostly the duplicates themselves. Rough shares for a general population.
U_PRIORS: dict[str, tuple[float, ...]] = {
    "name": (0.005, 0.003, 0.005, 0.05, 0.937),
    "date": (0.0001, 0.0001, 0.0003, 0.003, 0.9965),
    "exact": (0.5, 0.5),
    "email": (0.0001, 0.0001, 0.001, 0.9988),
    "edit": (0.001, 0.002, 0.005, 0.992),
    "text": (0.01, 0.02, 0.1, 0.87),
}
CONTEXT_U_PRIORS: tuple[float, ...] = (0.05, 0.95)

#: m priors for context roles: a duplicate is often registered elsewhere (another doctor).
CONTEXT_M_PRIORS: tuple[float, ...] = (0.70, 0.30)
CONTEXT_ROLES: frozenset[str] = frozenset({"doctor", "office"})
#: m priors of doctor and office together (one comparison): same doctor, another doctor of
#: the same office, neither.
CARE_M_PRIORS: tuple[float, ...] = (0.72, 0.06, 0.22)
CARE_U_PRIORS: tuple[float, ...] = (0.02, 0.03, 0.95)

#: Roles whose exact agreement is weighted by how rare the value is (term frequency): two
#: records sharing a rare surname, or the doctor of few patients, say more than a common one.
TERM_FREQUENCY_ROLES: frozenset[str] = frozenset(
    {"first_name", "last_name", "city", "postcode", "doctor", "office"}
)

#: Blocking rules for prediction: a pair is scored when all roles of any rule agree
#: exactly (after normalisation). Rules whose roles are not all mapped are skipped.
BLOCKING_RULES: tuple[tuple[str, ...], ...] = (
    ("birthdate",),
    ("first_name", "last_name"),
    ("national_id",),
    ("email",),
    ("phone",),
    ("postcode", "street_number"),
    ("last_name", "postcode"),
    ("first_name", "office"),
    ("last_name", "office"),
    ("first_name", "doctor"),
    ("last_name", "doctor"),
    ("first_name", "city"),
    ("last_name", "address_1"),
)

#: Blocking rules for expectation maximisation: each leaves the other roles free to train.
TRAINING_RULES: tuple[tuple[str, ...], ...] = (
    ("birthdate",),
    ("first_name", "last_name"),
    ("postcode",),
    ("national_id",),
)

#: Deterministic rules (nearly no false positives) estimating the share of matching pairs.
DETERMINISTIC_RULES: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name", "birthdate"),
    ("national_id", "birthdate"),
    ("email", "birthdate"),
)
#: Assumed recall of :data:`DETERMINISTIC_RULES` (typos defeat exact rules).
DETERMINISTIC_RECALL = 0.7

#: Share of records assumed to be a duplicate of another, before the data says otherwise:
#: the prior of the probability that two random records match is ``2 * share / records``.
EXPECTED_DUPLICATE_SHARE = 0.02

#: Below this many records u is not estimated from random pairs (the u priors are used).
MIN_RECORDS_FOR_U = 50

#: Below this many records the m priors are used instead of expectation maximisation.
MIN_RECORDS_FOR_EM = 2_000

#: Default thresholds on the match probability: at or above ``link`` two records are linked
#: automatically; at or above ``review`` (and below ``link``) a human decides.
DEFAULT_LINK_THRESHOLD = 0.99
DEFAULT_REVIEW_THRESHOLD = 0.5
#: The phase-1 patient step's defaults (DAG params ``dedup_link_threshold`` and
#: ``dedup_review_threshold``). Lower than the generic link threshold because legacy
#: patients carry little evidence (names, date of birth, sex, doctor; e-mail rarely), so a
#: true duplicate with one variant seldom reaches 0.99; measured on the sandbox at scale 1.0
#: (docs/dedup.md): precision 0.99 at 0.9, with the review band catching the rest.
PATIENT_LINK_THRESHOLD = 0.9
PATIENT_REVIEW_THRESHOLD = 0.5

#: Seed of the random pair sample that estimates u, so a rerun decides the same way.
SEED = 16
