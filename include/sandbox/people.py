"""Users, groups, offices, doctor/user settings and patients.

Built in two steps. *Planning* fixes the skeleton every later table hangs off: user ids and
roles in creation order, which doctors practise, which office each patient belongs to,
duplicate pairs. *Row generators* then stream the table rows from that skeleton with
their own random streams, logging every defect they inject.
"""

from __future__ import annotations

import json
import random
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from itertools import accumulate

from include.sandbox.common import (
    DAY,
    HOUR,
    SPAN,
    DefectLog,
    at,
    clamp,
    day_of,
    sorted_growth_times,
    stream,
)
from include.sandbox.defects import rate
from include.sandbox.duplicates import (
    birthdate_typo,
    birthdate_variant,
    copy_name,
    patient_variant,
)
from include.sandbox.text import (
    ascii_fold,
    email_variant,
    invalid_email,
    person_name,
    token,
    valid_email,
)
from include.sandbox.volumes import ROLE_VOLUMES, defect_count, sample_indices, shuffled_labels

#: auth_group rows. Ids 1, 2, 4, 5 and 11 carry the role meaning of §1b; names are invented.
GROUPS: tuple[tuple[int, str], ...] = (
    (1, "Patients"),
    (2, "Doctors"),
    (3, "Sales"),
    (4, "Admins"),
    (5, "Masters"),
    (6, "Support"),
    (7, "Designers"),
    (8, "Manufacturing"),
    (9, "Shipping"),
    (11, "Technicians"),
)
_PRIMARY_GROUPS = {
    "patient": (1,),
    "doctor": (2,),
    "technician": (11,),
    "admin": (4,),
    "master": (5,),
    "staff": (3, 6, 9),
}
#: Second groups that make a user's role ambiguous (§1c #5: "highest group_id wins").
_EXTRA_GROUPS = {
    "patient": (2, 3),
    "doctor": (5, 1),
    "technician": (7, 8, 4),
    "admin": (5,),
    "master": (4,),
    "staff": (7,),
}
#: Share of doctors with at least one patient (§1c #4: 741 of 1,181 have none).
_PRACTISING = 440 / 1181


@dataclass(frozen=True)
class _Country:
    offices: int  # offices at scale 1.0 (§1c)
    locale: str  # language of names and of native clinical text
    taxes: tuple[str, ...]  # plausible rates as fractions
    variants: tuple[str, ...]  # other spellings seen in free-text country fields
    cities: tuple[tuple[str, str], ...]  # (city, state/prefecture)


COUNTRIES: dict[str, _Country] = {
    "USA": _Country(
        553, "en", ("0.0600", "0.0725", "0.0825", "0.0875", "0.1025", "0.0400"),
        ("US", "U.S.A.", "united states", "United States of America", "usa ", "U.S."),
        (("Springfield", "IL"), ("Riverside", "CA"), ("Franklin", "TN"), ("Austin", "TX"),
         ("Portland", "OR"), ("Madison", "WI"), ("Columbus", "OH"), ("Fairview", "NJ")),
    ),
    "India": _Country(155, "in", ("0.1800",), ("INDIA", "IND", " India", "india"),
                      (("Pune", "MH"), ("Chennai", "TN"), ("Kochi", "KL"))),
    "Japan": _Country(110, "ja", ("0.1000",), (" Japan ", "JP", "japan", "JAPAN", "Nippon"),
                      (("Tokyo", "Tokyo"), ("Osaka", "Osaka"), ("Nagoya", "Aichi"))),
    "Thailand": _Country(64, "th", ("0.0700",), ("TH", "thailand", "Thailand ", "THA", "Thai"),
                         (("Bangkok", "Bangkok"), ("Chiang Mai", "Chiang Mai"))),
    "Vietnam": _Country(3, "en", ("0.1000",), ("Viet Nam", "VN", "vietnam"),
                        (("Hanoi", ""), ("Da Nang", ""))),
    "Australia": _Country(3, "en", ("0.1000",), ("AU", "AUS", "australia"),
                          (("Perth", "WA"), ("Brisbane", "QLD"))),
    "Philippines": _Country(1, "en", ("0.1200",), ("Phillipines", "PH"), (("Cebu", ""),)),
    "Singapore": _Country(1, "en", ("0.0900",), ("SG", "singapore"), (("Singapore", ""),)),
    "France": _Country(1, "en", ("0.2000",), ("FR", "france"), (("Lyon", ""),)),
    "New Zealand": _Country(1, "en", ("0.1500",), ("NZ", "new zealand"), (("Nelson", ""),)),
}  # fmt: skip
#: Patients per office country (§1c #10: USA 5,529, Japan 1,563, Thailand 891, India 72,
#: Australia 4); the other countries and unusable country values get a token share.
_PATIENT_COUNTRIES: dict[str, float] = {
    "USA": 5529, "Japan": 1563, "Thailand": 891, "India": 72, "Australia": 4, "Vietnam": 2,
    "Philippines": 1, "Singapore": 1, "France": 1, "New Zealand": 1, "<null>": 2, "<unknown>": 2,
}  # fmt: skip
_UNKNOWN_COUNTRIES = ("TBD", "see address", "Main office", "xx", "Planet Earth", "n/a")
_NULL, _UNKNOWN = "<null>", "<unknown>"
_OFFICE_WORDS = ("Orthodontics", "Dental Care", "Smile Studio", "Family Dentistry", "Ortho Center")


@dataclass
class Users:
    """Skeleton of auth_user in creation (= id) order.

    Attributes:
        ids: sparse user ids (§1c #26: ids run past the row count).
        roles: patient, doctor, technician, admin, master or staff.
        joined: date_joined, seconds after START.
        kinds: e-mail kind: valid, empty, invalid, and for doctors test, dup_email, dup_name.
        practising: indices of the doctors that own most offices (and so get patients).
        duplicate_of: user index -> index of the user it duplicates (doctors and patients).
    """

    ids: list[int]
    roles: list[str]
    joined: list[int]
    kinds: list[str]
    practising: list[int]
    duplicate_of: dict[int, int] = field(default_factory=dict)

    def of_role(self, *roles: str) -> list[int]:
        """User ids of the given roles, in creation order."""
        return [uid for uid, role in zip(self.ids, self.roles, strict=True) if role in roles]


@dataclass
class Offices:
    """Skeleton of dispatch_office: countries, owners, validity, doctor links."""

    ids: list[int]
    label: list[str]
    canonical: list[str | None]
    country: list[str | None]
    owner: list[int]
    valid: list[bool]
    pairs: list[tuple[int, int]]
    by_doctor: dict[int, list[int]]

    def locale(self, office_id: int) -> str:
        """Name/text locale of an office's country (English when unknown)."""
        canonical = self.canonical[office_id - 1]
        return COUNTRIES[canonical].locale if canonical else "en"


@dataclass
class Patients:
    """Skeleton of dispatch_patient in creation order (ids sparse and large, §1a)."""

    ids: list[int]
    user_index: list[int]
    doctor: list[int | None]
    office: list[int | None]
    submitted: list[int]
    locale: list[str]
    birthdate: list[date | None]
    suffix: list[str | None]
    #: user index of a duplicate patient -> its extra variants (include.sandbox.duplicates).
    variants: dict[int, set[str]] = field(default_factory=dict)

    def text_locale(self, index: int) -> str:
        """Language of native clinical text about this patient: ja, th or en."""
        locale = self.locale[index]
        return locale if locale in ("ja", "th") else "en"


# ----------------------------------------------------------------------- planning ----
def plan_users(seed: int, volumes: dict[str, int]) -> Users:
    """Roles, sparse ids, join times, e-mail kinds and practising doctors."""
    rng = stream(seed, "auth_user.plan")
    pool = [role for role in ROLE_VOLUMES for _ in range(volumes[f"users.{role}"])]
    # The lab existed before its customers: a master, an admin and a doctor come first.
    pioneers = ["master", "admin", "doctor"]
    for role in pioneers:
        pool.remove(role)
    rng.shuffle(pool)
    roles = pioneers + pool
    joined = sorted_growth_times(rng, len(roles), growth=0.0)
    ids, next_id = [], 1
    for _ in roles:
        ids.append(next_id)
        next_id += 1 if rng.random() < 0.96 else rng.randint(2, 4)
    kinds = [""] * len(roles)
    by_role: dict[str, list[int]] = {role: [] for role in ROLE_VOLUMES}
    for index, role in enumerate(roles):
        by_role[role].append(index)
    patient_kinds = shuffled_labels(
        rng,
        len(by_role["patient"]),
        {"empty": 0.975, "invalid": 0.01, "valid": 0.015},
        {"invalid": 1},
    )
    doctor_share = {
        "test": rate("test_account"),
        "dup_email": 62 / 1181,
        "dup_name": 122 / 1181,
        "invalid": 0.03,
        "empty": 0.04,
    }
    doctor_share["valid"] = 1 - sum(doctor_share.values())
    doctor_kinds = shuffled_labels(
        rng,
        len(by_role["doctor"]),
        doctor_share,
        {"test": 1, "dup_email": 1, "dup_name": 1, "valid": 3},
    )
    # The first doctor is a pioneer: an ordinary account, the oldest original of duplicates.
    first_valid = doctor_kinds.index("valid")
    doctor_kinds[0], doctor_kinds[first_valid] = doctor_kinds[first_valid], doctor_kinds[0]
    for index, kind in zip(by_role["patient"], patient_kinds, strict=True):
        kinds[index] = kind
    for index, kind in zip(by_role["doctor"], doctor_kinds, strict=True):
        kinds[index] = kind
    for role in ("technician", "admin", "master", "staff"):
        for index in by_role[role]:
            kinds[index] = "valid" if rng.random() < 0.9 else "empty"
    ordinary = [i for i in by_role["doctor"] if kinds[i] in ("valid", "invalid", "empty")]
    wanted = max(1, round(len(by_role["doctor"]) * _PRACTISING))
    practising = sorted({ordinary[0], *rng.sample(ordinary, min(wanted, len(ordinary)))})
    users = Users(ids, roles, joined, kinds, practising)
    # Originals are older accounts: 7 addresses and 40 names carry the copies (§1c #2).
    heads = [i for i in by_role["doctor"] if kinds[i] == "valid"]
    email_count = max(1, round(len(heads) * 7 / 692))
    name_count = max(1, round(len(heads) * 40 / 692))
    head_pools = {
        "dup_email": heads[:email_count],
        "dup_name": heads[email_count : email_count + name_count],
    }
    for index in by_role["doctor"]:
        candidates = head_pools.get(kinds[index])
        if candidates is not None:
            older = [h for h in candidates if h < index]
            users.duplicate_of[index] = rng.choice(older) if older else heads[0]
    return users


def plan_offices(seed: int, volumes: dict[str, int], users: Users, defects: DefectLog) -> Offices:
    """Countries (with variants), owners, validity and the office-doctor pairs."""
    rng = stream(seed, "dispatch_office.plan")
    total = volumes["dispatch_office"]
    shares = {name: float(c.offices) for name, c in COUNTRIES.items()}
    shares[_NULL] = 4.0
    shares[_UNKNOWN] = 2.0
    countries = shuffled_labels(
        rng, total, shares, {_NULL: 1, _UNKNOWN: 1, "Japan": 1, "Thailand": 1}
    )
    ids = list(range(1, total + 1))
    canonical: list[str | None] = [c if c in COUNTRIES else None for c in countries]
    text: list[str | None] = list(canonical)
    known = [i for i, c in enumerate(canonical) if c is not None]
    for i in sample_indices(rng, known, defect_count(len(known), rate("country_variant"))):
        text[i] = rng.choice(COUNTRIES[countries[i]].variants)
        defects.add("country_variant", "dispatch_office", ids[i])
    for i, label in enumerate(countries):
        if label == _NULL:
            defects.add("country_null", "dispatch_office", ids[i])
        elif label == _UNKNOWN:
            text[i] = rng.choice(_UNKNOWN_COUNTRIES)
            defects.add("country_unknown", "dispatch_office", ids[i])
    valid_count = volumes["dispatch_office.valid"]
    valid_set = set(sample_indices(rng, known, valid_count))
    if len(valid_set) < valid_count:
        others = [i for i in range(total) if i not in valid_set]
        valid_set.update(sample_indices(rng, others, valid_count - len(valid_set)))
    valid = [i in valid_set for i in range(total)]

    practising_ids = [users.ids[i] for i in users.practising]
    all_doctors = users.of_role("doctor")
    owners = []
    for i in range(total):
        if i < len(practising_ids):
            owners.append(practising_ids[i])
        else:
            owners.append(rng.choice(practising_ids if rng.random() < 0.7 else all_doctors))
    rng.shuffle(owners)

    pairs_total = volumes["dispatch_office_doctors"]
    owner_pairs = min(total, max(1, round(pairs_total * 424 / 438)))
    chosen = sample_indices(rng, range(total), owner_pairs)
    pairs = [(ids[i], owners[i]) for i in chosen]
    seen = set(pairs)
    attempts = 0
    while len(pairs) < pairs_total and attempts < 50 * pairs_total:
        attempts += 1
        pair = (rng.choice(ids), rng.choice(practising_ids))
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    pairs.sort()
    by_doctor: dict[int, list[int]] = {}
    for office_id, owner in zip(ids, owners, strict=True):
        by_doctor.setdefault(owner, []).append(office_id)
    for office_id, doctor in pairs:
        if office_id not in by_doctor.setdefault(doctor, []):
            by_doctor[doctor].append(office_id)
    return Offices(ids, countries, canonical, text, owners, valid, pairs, by_doctor)


def plan_patients(seed: int, users: Users, offices: Offices, defects: DefectLog) -> Patients:
    """Doctor, office, ids, dates, suffixes and duplicate pairs of every patient."""
    rng = stream(seed, "dispatch_patient.plan")
    patient_users = [i for i, role in enumerate(users.roles) if role == "patient"]
    count = len(patient_users)
    # Country first (patients per country, §1c #10), then an office of that country: office
    # sizes are skewed (patients per doctor: median 4, mean 17, max 453, §1c #4) and invalid
    # offices rarely have patients; then the office's owner or another of its doctors.
    by_country: dict[str, list[int]] = {}
    for i, label in enumerate(offices.label):
        by_country.setdefault(label, []).append(i)
    countries = [c for c in _PATIENT_COUNTRIES if c in by_country]
    country_cumulative = list(accumulate(_PATIENT_COUNTRIES[c] for c in countries))
    office_cumulative = {
        c: list(
            accumulate(
                rng.lognormvariate(0, 1.4) * (1.0 if offices.valid[i] else 0.05)
                for i in by_country[c]
            )
        )
        for c in countries
    }
    colleagues: dict[int, list[int]] = {}
    for office_id, doctor_id in offices.pairs:
        colleagues.setdefault(office_id, []).append(doctor_id)

    ids: list[int] = []
    doctor: list[int | None] = []
    office: list[int | None] = []
    submitted: list[int] = []
    next_id = rng.randint(50, 500)
    for user_index in patient_users:
        joined = users.joined[user_index]
        country = countries[_weighted(rng, country_cumulative)]
        index = by_country[country][_weighted(rng, office_cumulative[country])]
        office_id = offices.ids[index]
        doctor_id = offices.owner[index]
        others = [d for d in colleagues.get(office_id, ()) if d != doctor_id]
        if others and rng.random() < 0.3:
            doctor_id = rng.choice(others)
        ids.append(next_id)
        next_id += rng.randint(1, 121)  # patient numbers reach ~523k (§1a)
        doctor.append(doctor_id)
        office.append(office_id)
        submitted.append(clamp(joined + rng.randint(60, HOUR)))

    birthdate = [_birthdate(rng, t) for t in submitted]
    suffix_labels = shuffled_labels(
        rng,
        count,
        {"missing": rate("suffix_missing"), "malformed": rate("suffix_malformed"), "ok": 1.0},
        {"missing": 1, "malformed": 1},
    )
    suffix = [_suffix(rng, label) for label in suffix_labels]
    for index, label in enumerate(suffix_labels):
        if label != "ok":
            defects.add(f"suffix_{label}", "dispatch_patient", ids[index])

    duplicate_of: dict[int, int] = {}
    variants: dict[int, set[str]] = {}
    # Extra variants draw from their own stream: the plan's stream stays as it was.
    variant_rng = stream(seed, "dispatch_patient.duplicates")
    pairs = defect_count(count // 2, rate("duplicate_patient") * 2)
    chosen = sample_indices(rng, range(count), 2 * pairs)
    rng.shuffle(chosen)
    for a, b in zip(chosen[0::2], chosen[1::2], strict=True):
        original, copy = min(a, b), max(a, b)
        duplicate_of[copy] = original
        users.duplicate_of[patient_users[copy]] = patient_users[original]
        doctor[copy], office[copy] = doctor[original], office[original]
        birthdate[copy] = birthdate_variant(rng, birthdate[original])
        drawn = variants[patient_users[copy]] = patient_variant(variant_rng)
        if "birthdate_typo" in drawn:  # instead of the variant above: one mistyped digit
            birthdate[copy] = birthdate_typo(variant_rng, birthdate[original])
        if "other_doctor" in drawn:  # registered again by another doctor (of another office)
            other = variant_rng.randrange(count)
            doctor[copy], office[copy] = doctor[other], office[other]
        defects.add("duplicate_patient", "dispatch_patient", ids[copy], related_id=ids[original])

    involved = set(duplicate_of) | set(duplicate_of.values())
    plain = [i for i in range(count) if i not in involved]
    for i in sample_indices(rng, plain, defect_count(count, rate("patient_no_doctor"))):
        doctor[i] = None
        defects.add("patient_no_doctor", "dispatch_patient", ids[i])
    for i in sample_indices(rng, plain, defect_count(count, rate("patient_no_office"))):
        office[i] = None
        defects.add("patient_no_office", "dispatch_patient", ids[i])

    locale = [offices.locale(o) if o is not None else "en" for o in office]
    return Patients(
        ids, patient_users, doctor, office, submitted, locale, birthdate, suffix, variants
    )


def _weighted(rng: random.Random, cumulative: list[float]) -> int:
    """Index drawn with the weights whose running sums are ``cumulative``."""
    return min(bisect_left(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def _birthdate(rng: random.Random, submitted: int) -> date | None:
    if rng.random() < 0.03:
        return None
    age = rng.uniform(9, 18) if rng.random() < 0.55 else rng.uniform(19, 65)
    return day_of(submitted) - timedelta(days=int(age * 365.25))


def _suffix(rng: random.Random, label: str) -> str | None:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    if label == "missing":
        return None if rng.random() < 0.8 else ""
    if label == "malformed":
        return rng.choice(("5BB", "00BBX", "7", "12B-n"))
    # Case codes look like '00BB' or '51Bn' (§1a dispatch_patient).
    return f"{rng.randrange(100):02d}{rng.choice(letters)}{rng.choice(letters + letters.lower())}"


def assign_names(
    seed: int, users: Users, patients: Patients, offices: Offices
) -> tuple[list[str], list[str]]:
    """First and last names per user: locale-aware, duplicates derived from their originals."""
    rng = stream(seed, "auth_user.names")
    locale = ["en"] * len(users.ids)
    for index, user_index in enumerate(patients.user_index):
        locale[user_index] = patients.locale[index]
    index_of = {uid: i for i, uid in enumerate(users.ids)}
    for doctor_id, office_ids in offices.by_doctor.items():
        locale[index_of[doctor_id]] = offices.locale(office_ids[0])
    names = [person_name(rng, loc) for loc in locale]
    for index in sorted(users.duplicate_of):
        first, last = names[users.duplicate_of[index]]
        if users.roles[index] == "patient":
            new_surname = person_name(rng, locale[index])[1]
            variants = patients.variants.get(index, set())
            names[index] = copy_name(rng, first, last, variants, new_surname)
        elif users.kinds[index] == "dup_name":
            names[index] = (first, last)
    return [n[0] for n in names], [n[1] for n in names]


# ------------------------------------------------------------------ row streams ----
def group_rows() -> Iterator[tuple[int, str]]:
    """auth_group: the fixed ten groups."""
    yield from GROUPS


def user_rows(
    seed: int, users: Users, first: list[str], last: list[str], defects: DefectLog
) -> Iterator[tuple[object, ...]]:
    """auth_user rows, with e-mail, test-account, duplicate and blank-name defects."""
    rng = stream(seed, "auth_user")
    count = len(users.ids)
    involved = set(users.duplicate_of) | set(users.duplicate_of.values())
    plain = [i for i in range(count) if i not in involved and users.kinds[i] != "test"]
    blank = set(sample_indices(rng, plain, defect_count(count, rate("name_blank"))))
    test_kinds = iter(
        shuffled_labels(
            rng,
            users.kinds.count("test"),
            {"brius.com": 215, "mechanodontics.com": 7, "demo": 1},
        )
    )
    emails: list[str] = [""] * count
    demo_taken = False
    for i in range(count):
        uid, role, kind = users.ids[i], users.roles[i], users.kinds[i]
        first_name, last_name = first[i], last[i]
        username = f"{_login(first_name)}.{_login(last_name)}{uid}"
        if i in blank:
            first_name, last_name = rng.choice(
                (("", last_name), (first_name, ""), ("null", last_name), ("", ""))
            )
            username = f"user{uid}"
            defects.add("name_blank", "auth_user", uid)
        if kind == "valid" or kind == "dup_name":
            email = valid_email(rng, first_name, last_name, uid)
        elif kind == "invalid":
            email = invalid_email(rng, first_name, last_name, uid)
            defects.add("email_invalid", "auth_user", uid)
        elif kind == "dup_email":
            email = email_variant(rng, emails[users.duplicate_of[i]])
        elif kind == "test":
            domain = next(test_kinds)
            if domain == "demo":
                first_name, last_name = "Demo", "Doctor"
                username = f"demo{uid}" if demo_taken else "demo"
                demo_taken = True
                email = f"demo{uid}@example.com"
            else:
                email = f"{_login(first_name)}.{_login(last_name)}{uid}@{domain}"
            defects.add("test_account", "auth_user", uid)
        else:
            email = ""
            defects.add("email_empty", "auth_user", uid)
        emails[i] = email
        if i in users.duplicate_of and role == "doctor":
            defects.add("duplicate_doctor", "auth_user", uid)
        joined = users.joined[i]
        never_logged_in = {"patient": 0.85, "doctor": 0.30}.get(role, 0.1)
        last_login = None if rng.random() < never_logged_in else at(rng.randint(joined, SPAN - 1))
        if role == "patient" and rng.random() < 0.7:
            password = "!" + token(rng, 40)  # Django's unusable password
        else:
            password = f"pbkdf2_sha256$260000${token(rng, 12)}${token(rng, 43)}="
        superuser = (
            role == "master" and rng.random() < 0.7 or role == "admin" and rng.random() < 0.1
        )
        staff = role in ("admin", "master", "technician") or role == "staff" and rng.random() < 0.5
        inactive = {"patient": 0.08, "doctor": 0.14}.get(role, 0.05)
        if kind in ("dup_email", "dup_name"):
            inactive = 0.5
        active = rng.random() >= inactive
        yield (
            uid, password, last_login, superuser, username, first_name, last_name, email,
            staff, active, at(joined),
        )  # fmt: skip


def _login(name: str) -> str:
    return ascii_fold(name).lower().replace(" ", "").replace("'", "") or "x"


def user_group_rows(seed: int, users: Users, defects: DefectLog) -> Iterator[tuple[int, int, int]]:
    """auth_user_groups: one group per role, none for some users, two for others."""
    rng = stream(seed, "auth_user_groups")
    count = len(users.ids)
    labels = shuffled_labels(
        rng,
        count,
        {"none": rate("user_no_group"), "multi": rate("user_multi_group"), "one": 1.0},
        {"none": 1, "multi": 1},
    )
    row_id = 0
    for uid, role, label in zip(users.ids, users.roles, labels, strict=True):
        if label == "none":
            defects.add("user_no_group", "auth_user", uid)
            continue
        groups = [rng.choice(_PRIMARY_GROUPS[role])]
        if label == "multi":
            groups.append(rng.choice(_EXTRA_GROUPS[role]))
            defects.add("user_multi_group", "auth_user", uid)
        for group_id in groups:
            row_id += 1
            yield row_id, uid, group_id


def office_rows(seed: int, offices: Offices, defects: DefectLog) -> Iterator[tuple[object, ...]]:
    """dispatch_office rows, with tax-rate unit defects (countries were set when planning)."""
    rng = stream(seed, "dispatch_office")
    count = len(offices.ids)
    percent = set(sample_indices(rng, range(count), defect_count(count, rate("tax_rate_percent"))))
    invalid_candidates = [i for i in range(count) if i not in percent]
    invalid = set(
        sample_indices(rng, invalid_candidates, defect_count(count, rate("tax_rate_invalid")))
    )
    for i, office_id in enumerate(offices.ids):
        canonical = offices.canonical[i]
        info = COUNTRIES[canonical] if canonical else COUNTRIES["USA"]
        city, state = rng.choice(info.cities)
        if canonical == "USA" and rng.random() < 0.65 or canonical is None:
            tax = Decimal("0.0000")
        else:
            tax = Decimal(rng.choice(info.taxes))
        if i in percent:
            tax = (tax or Decimal(rng.choice(("0.0725", "0.1025", "0.0888")))) * 100
            defects.add("tax_rate_percent", "dispatch_office", office_id)
        elif i in invalid:
            tax = Decimal(rng.choice(("150.0000", "1000.0000", "-5.0000", "250.5000")))
            defects.add("tax_rate_invalid", "dispatch_office", office_id)
        us = canonical == "USA"
        yield (
            office_id,
            offices.owner[i],
            f"{city} {rng.choice(_OFFICE_WORDS)}",
            f"{rng.randint(10, 9999)} {rng.choice(('Main', 'Oak', 'Park', 'Lake', 'Hill'))} "
            f"{rng.choice(('St', 'Ave', 'Blvd', 'Rd'))}",
            f"Suite {rng.randint(100, 499)}" if rng.random() < 0.4 else None,
            city,
            state or None,
            f"{rng.randint(10000, 99999)}"
            if us
            else f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            offices.country[i],
            f"({rng.randint(201, 989)}) 555-{rng.randint(0, 9999):04d}",
            tax.quantize(Decimal("0.0001")),
            offices.valid[i],
            f"CUST_{token(rng, 20)}" if offices.valid[i] and rng.random() < 0.6 else None,
            rng.random() < 0.85,
        )


def office_doctor_rows(offices: Offices) -> Iterator[tuple[int, int, int]]:
    """dispatch_office_doctors: the M2M pairs planned with the offices."""
    for row_id, (office_id, user_id) in enumerate(offices.pairs, start=1):
        yield row_id, office_id, user_id


def doctorsetting_rows(seed: int, users: Users) -> Iterator[tuple[object, ...]]:
    """dispatch_doctorsetting: one row per doctor, the main "is a doctor" signal (§1b #4)."""
    rng = stream(seed, "dispatch_doctorsetting")
    for row_id, (uid, joined) in enumerate(
        (
            (u, t)
            for u, r, t in zip(users.ids, users.roles, users.joined, strict=True)
            if r == "doctor"
        ),
        start=1,
    ):
        agreed = at(rng.randint(joined, SPAN - 1)) if rng.random() < 0.6 else None
        preferences = (
            json.dumps(
                {"ipr": rng.choice(("allowed", "avoid")), "attachments": rng.random() < 0.8},
                sort_keys=True,
            )
            if rng.random() < 0.5
            else None
        )
        yield (
            row_id,
            uid,
            preferences,
            f"CUST_{token(rng, 20)}" if rng.random() < 0.4 else None,
            rng.random() < 0.1,
            Decimal(rng.randrange(0, 50000)) / 100 if rng.random() < 0.2 else None,
            rng.choice((None, 1, 2, 3)),
            day_of(rng.randint(joined, SPAN - 1)) if rng.random() < 0.2 else None,
            rng.random() < 0.15,
            agreed,
            agreed,
            rng.random() < 0.05,
        )


def usersetting_rows(seed: int, users: Users) -> Iterator[tuple[object, ...]]:
    """dispatch_usersetting: preferences of doctors and lab staff (a second doctor signal)."""
    rng = stream(seed, "dispatch_usersetting")
    row_id = 0
    for uid, role in zip(users.ids, users.roles, strict=True):
        if role == "patient":
            continue
        row_id += 1
        yield row_id, uid, rng.random() < 0.9, rng.choice((None, False, True))


def patient_rows(
    seed: int, patients: Patients, users: Users, defects: DefectLog
) -> Iterator[tuple[object, ...]]:
    """dispatch_patient rows, with code, JSON and birthdate defects."""
    rng = stream(seed, "dispatch_patient")
    count = len(patients.ids)
    pick = {
        name: set(sample_indices(rng, range(count), defect_count(count, rate(name))))
        for name in (
            "sex_invalid",
            "patient_status_unknown",
            "schemes_invalid_json",
            "birthdate_implausible",
        )
    }
    statuses = shuffled_labels(rng, count, {1: 0.60, 4: 0.246, 2: 0.05, 10: 0.104})
    # A duplicate is the same person: it has its original's sex (drawn first, lower index).
    patient_of_user = {u: i for i, u in enumerate(patients.user_index)}
    original_of = {
        patient_of_user[copy]: patient_of_user[original]
        for copy, original in users.duplicate_of.items()
        if copy in patient_of_user
    }
    drawn_sex: dict[int, int | None] = {}
    for i, patient_id in enumerate(patients.ids):
        sex: int | None = rng.choices((1, 2, 0, None), (40, 55, 2, 3))[0]
        drawn_sex[i] = sex = drawn_sex[original_of[i]] if i in original_of else sex
        if i in pick["sex_invalid"]:
            sex = rng.choice((3, 9, -1))
            defects.add("sex_invalid", "dispatch_patient", patient_id)
        status = statuses[i]
        if i in pick["patient_status_unknown"]:
            status = rng.choice((0, 3, 7))
            defects.add("patient_status_unknown", "dispatch_patient", patient_id)
        schemes = _schemes(rng)
        if i in pick["schemes_invalid_json"]:
            schemes = rng.choice(
                (
                    "{'payment': 'full'}",
                    '{"payment": "installments"',
                    "installments x3",
                    "{insurance}",
                )
            )
            defects.add("schemes_invalid_json", "dispatch_patient", patient_id)
        birthdate = patients.birthdate[i]
        if i in pick["birthdate_implausible"]:
            birthdate = rng.choice(
                (date(1899, 12, 31), date(1850, 6, 1), date(2026, 3, 4), date(2099, 1, 1))
            )
            defects.add("birthdate_implausible", "dispatch_patient", patient_id)
        submitted = patients.submitted[i]
        yield (
            patient_id,
            users.ids[patients.user_index[i]],
            patients.doctor[i],
            patients.office[i],
            birthdate,
            sex,
            status,
            status == 10 or rng.random() < 0.01,
            rng.random() < 0.01,
            schemes,
            patients.suffix[i],
            at(submitted),
            at(rng.randint(submitted, min(SPAN - 1, submitted + 400 * DAY))),
        )


def _schemes(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.6:
        return None
    if roll < 0.85:
        return "{}"
    scheme = {
        "payment": rng.choice(("full", "installments", "insurance")),
        "insurance": rng.random() < 0.3,
    }
    return json.dumps(scheme, sort_keys=True)
