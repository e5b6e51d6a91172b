"""Synthetic names, e-mail addresses and clinical text for the sandbox.

Everything is invented: names are common given names and surnames combined at random,
addresses use reserved ``example.*`` domains (RFC 2606) apart from the two test-account
domains the documents name (§1c #3), and phone numbers use the fictional 555 exchange.
Clinical text is a small set of plausible orthodontic phrases in English, Japanese and Thai
(the legacy messages are multilingual, §1c #19).
"""

from __future__ import annotations

import random
import unicodedata

FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
        "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
        "Sarah", "Daniel", "Karen", "Matthew", "Lisa", "Anthony", "Nancy", "Mark", "Sandra",
        "Steven", "Ashley", "Andrew", "Emily", "Joshua", "Megan", "Kevin", "Olivia", "Brian",
        "Chloe", "Ethan", "Ava", "Noah", "Mia", "José", "María", "Sofía", "Zoë", "Renée",
        "André", "Chloé", "Jérôme", "Noémie", "Ramón",
    ),
    "ja": (
        "Haruto", "Yui", "Sota", "Hina", "Ren", "Aoi", "Yuto", "Sakura", "Kenji", "Yuki",
        "Takumi", "Mei", "Daiki", "Rin", "Hiroshi", "Emi",
    ),
    "th": (
        "Somchai", "Somsak", "Nattapong", "Siriporn", "Kanya", "Malee", "Anong", "Prasert",
        "Wichai", "Ploy", "Arthit", "Kanokwan",
    ),
    "in": ("Arjun", "Priya", "Rahul", "Ananya", "Vikram", "Divya", "Rohan", "Kavya"),
}  # fmt: skip

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
        "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White",
        "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott",
        "Green", "Baker", "Adams", "Nelson", "Carter", "García", "Pérez", "Hernández",
        "López", "Muñoz", "Núñez", "Gómez", "Martínez", "Rodríguez", "Sánchez",
    ),
    "ja": (
        "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
        "Kobayashi", "Kato", "Yoshida", "Yamada",
    ),
    "th": (
        "Saetang", "Srisuk", "Chaiyaporn", "Wongsawat", "Boonmee", "Suksawat", "Kittisak",
        "Rattanakorn",
    ),
    "in": ("Sharma", "Patel", "Reddy", "Iyer", "Nair", "Gupta", "Menon", "Das"),
}  # fmt: skip

CLINICAL_EN: tuple[str, ...] = (
    "Please close the lower anterior spacing.",
    "Reduce IPR on teeth 22 and 23 to 0.2 mm.",
    "Patient reports aligner tray 12 is not seating fully.",
    "Approved the setup, please proceed to manufacturing.",
    "Add attachments on the upper premolars.",
    "Intrude upper incisors 1 mm and correct the midline.",
    "Refinement requested after tray 18.",
    "Replacement aligner needed for the lower arch, tray 7.",
    "Scan shows distortion on the upper left molar; please rescan.",
    "Keep the existing overjet, patient prefers minimal changes.",
    "Extraction of tooth 34 is planned before treatment.",
    "Please send the treatment plan for doctor review.",
    "Bite ramps on upper incisors, class II elastics from tray 5.",
    "Patient is moving; please ship to the new office address.",
    "Retainer order, no movement required.",
    "Crossbite correction on the right side.",
    "Please confirm the number of trays before printing.",
    "Contact clinic about the missing impressions.",
    "Skip to stage 3 per the doctor's request.",
    "Patient has a crown on tooth 16, avoid attachments there.",
    "Expand the upper arch 2 mm to relieve crowding.",
    "Derotate tooth 13 and level the lower curve of Spee.",
)

CLINICAL_NATIVE: dict[str, tuple[str, ...]] = {
    "ja": (
        "上顎前歯部の叢生を改善してください。",
        "下顎のIPRは0.2mmでお願いします。",
        "患者さんからアライナーが合わないとの連絡がありました。",
        "治療計画を承認します。製作を進めてください。",
        "上顎小臼歯にアタッチメントを追加してください。",
        "リファインメントを希望します。",
        "スキャンデータに歪みがあります。再スキャンをお願いします。",
        "正中線のずれを修正してください。",
    ),
    "th": (
        "กรุณาปิดช่องว่างฟันหน้าล่าง",
        "ผู้ป่วยแจ้งว่าเครื่องมือจัดฟันใส่ไม่พอดี",
        "อนุมัติแผนการรักษา กรุณาดำเนินการผลิต",
        "กรุณาเพิ่มปุ่มยึดที่ฟันกรามน้อยบน",
        "ต้องการรีไฟน์เมนต์หลังถาดที่ 18",
        "กรุณาสแกนใหม่ เนื่องจากข้อมูลไม่ชัดเจน",
    ),
}

#: Accented English-language sentences; their mojibake keeps to printable characters
#: (each accent is 0xC3 plus a byte >= 0xA0 in UTF-8).
_ACCENTED: tuple[str, ...] = (
    "Patient prefers café-coloured elastics; see the résumé of the consult.",
    "Señora Muñoz requests a retainer after treatment.",
    "Dr. Müller approved the plan, no further changes.",
    "Fiancé of the patient will pick up the trays; naïve bite registration attached.",
)

_VALID_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_ACCENTS = {"a": "á", "e": "é", "o": "ó", "u": "ú"}


def ascii_fold(text: str) -> str:
    """``text`` without accents (NFKD, combining marks dropped)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


#: Surname stems and endings per locale. Only a minority of a real register carries one of
#: the few common surnames listed above; the rest is a long tail, built from these. Without
#: it an 8,500-patient sandbox would be full of namesakes no real register has, and every
#: duplicate search on it would measure the name lists, not the matching.
_SURNAME_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        (
            "Ash", "Brad", "Cal", "Dun", "Ell", "Fair", "Gold", "Hart", "Kings", "Lang", "Mar",
            "New", "Pen", "Rad", "Stan", "Thorn", "Wes", "Whit", "Black", "Brook", "Cole",
            "Crane", "Fox", "Hol", "Lid", "Mor", "Rook", "Sel", "Sher", "Wick",
        ),
        (
            "ford", "ley", "ton", "wood", "field", "by", "well", "worth", "more", "ridge",
            "stone", "combe", "ham", "land", "shaw", "brook", "dale", "wick", "burn", "cott",
        ),
    ),
    "ja": (
        (
            "Aka", "Fuji", "Hara", "Hashi", "Hira", "Ishi", "Kawa", "Kita", "Kiyo", "Matsu",
            "Mina", "Mori", "Naka", "Niwa", "Oga", "Saka", "Shima", "Taka", "Uchi", "Yoko",
        ),
        (
            "da", "moto", "no", "yama", "kawa", "saki", "mura", "shita", "gawa", "zawa", "hara",
            "uchi", "ta", "zaki", "oka",
        ),
    ),
    "th": (
        (
            "Bun", "Chai", "Chan", "Kaew", "Klin", "Nak", "Pong", "Rung", "Sang", "Sri", "Suk",
            "Thong", "Wong", "Yod", "Kiat", "Phrom",
        ),
        (
            "chai", "sakul", "siri", "wong", "porn", "sawat", "rat", "thong", "kul", "phan",
            "sri", "wattana", "thep", "niyom",
        ),
    ),
    "in": (
        (
            "Agar", "Bhat", "Chand", "Desh", "Jain", "Kapoor", "Kul", "Mal", "Pand", "Raj",
            "Sax", "Shr", "Srini", "Vasu", "Ver",
        ),
        ("wal", "ra", "kar", "pande", "iya", "ani", "esh", "ena", "ma", "van", "athan", "dev"),
    ),
}  # fmt: skip
#: Share of people who carry one of the listed common surnames.
_COMMON_SURNAME_SHARE = 0.35


def person_name(rng: random.Random, locale: str) -> tuple[str, str]:
    """A random ``(first, last)`` name for ``locale`` (en, ja, th or in)."""
    first = rng.choice(FIRST_NAMES[locale])
    if rng.random() < _COMMON_SURNAME_SHARE:
        return first, rng.choice(LAST_NAMES[locale])
    stems, endings = _SURNAME_PARTS[locale]
    return first, rng.choice(stems) + rng.choice(endings)


def _local_part(first: str, last: str) -> str:
    return ascii_fold(f"{first}.{last}").lower().replace(" ", "")


def valid_email(rng: random.Random, first: str, last: str, number: int) -> str:
    """A well-formed address on a reserved domain, unique through ``number``."""
    return f"{_local_part(first or 'user', last or 'x')}{number}@{rng.choice(_VALID_DOMAINS)}"


def invalid_email(rng: random.Random, first: str, last: str, number: int) -> str:
    """A malformed address of one of the kinds the legacy clean-up regexes met (§1c #1)."""
    local = f"{_local_part(first or 'user', last or 'x')}{number}"
    domain = rng.choice(_VALID_DOMAINS)
    apostrophe = local.replace(".", ".o'", 1)
    return rng.choice(
        (
            f"{apostrophe}@{domain}",
            f"{local}.{domain}",  # missing @
            f"{local.replace('.', ' ', 1)}@{domain}",  # space
            f"{local}@{domain}.",  # trailing dot
            f"{local}@@{domain}",  # doubled @
        )
    )


def email_variant(rng: random.Random, email: str) -> str:
    """The same address as a duplicate account holds it: other case or stray spaces."""
    return rng.choice((email, email.upper(), email.capitalize(), f" {email}", f"{email} "))


def name_variant(rng: random.Random, first: str, last: str) -> tuple[str, str]:
    """How a second registration of the same person spells the name (§1e de-duplication)."""
    kind = rng.choice(("case", "whitespace", "accents"))
    if kind == "case":
        return first.upper(), last.upper()
    if kind == "whitespace":
        return f" {first}", f"{last}  "
    if ascii_fold(last) != last:
        return first, ascii_fold(last)
    if ascii_fold(first) != first:
        return ascii_fold(first), last
    for plain, accented in _ACCENTS.items():
        if plain in last:
            return first, last.replace(plain, accented, 1)
        if plain in first:
            return first.replace(plain, accented, 1), last
    return first.upper(), last.upper()


def sentence(rng: random.Random) -> str:
    """One English clinical sentence."""
    return rng.choice(CLINICAL_EN)


def clinical_text(rng: random.Random, sentences: int, locale: str = "en") -> str:
    """A message of ``sentences`` sentences, English or native (``ja``/``th``)."""
    phrases = CLINICAL_NATIVE.get(locale, CLINICAL_EN)
    joiner = "" if locale == "ja" else " "
    return joiner.join(rng.choice(phrases) for _ in range(sentences))


def mojibake(text: str) -> str:
    """``text`` as a UTF-8 byte string wrongly decoded as latin-1 ('é' -> 'Ã©')."""
    return text.encode("utf-8").decode("latin-1")


def mojibake_text(rng: random.Random) -> str:
    """A clinical sentence with accents, garbled by a latin-1 round trip (§1c #19)."""
    return mojibake(rng.choice(_ACCENTED))


def token(
    rng: random.Random, length: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
) -> str:
    """A random identifier-like string (Square ids, salts)."""
    return "".join(rng.choice(alphabet) for _ in range(length))
