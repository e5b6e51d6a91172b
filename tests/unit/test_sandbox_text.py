import random
import re

from include.sandbox.text import (
    ascii_fold,
    clinical_text,
    invalid_email,
    mojibake,
    mojibake_text,
    name_variant,
    valid_email,
)

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def test_valid_and_invalid_emails():
    rng = random.Random(3)
    for number in range(200):
        assert EMAIL.match(valid_email(rng, "José", "Núñez", number))
        assert not EMAIL.match(invalid_email(rng, "Mary", "Smith", number))


def test_mojibake_is_utf8_read_as_latin1():
    assert mojibake("café") == "cafÃ©"
    text = mojibake_text(random.Random(1))
    assert "Ã" in text
    assert all(ch.isprintable() for ch in text)


def test_native_clinical_text_is_not_ascii():
    rng = random.Random(4)
    assert not clinical_text(rng, 2, "ja").isascii()
    assert not clinical_text(rng, 2, "th").isascii()
    assert clinical_text(rng, 2).isascii()


def test_name_variants_differ_but_match_after_normalisation():
    rng = random.Random(9)
    for first, last in [("María", "García"), ("John", "Smith"), ("Yui", "Sato")]:
        for _ in range(20):
            v_first, v_last = name_variant(rng, first, last)
            assert (v_first, v_last) != (first, last)
            assert (
                ascii_fold(f"{v_first} {v_last}").lower().split()
                == ascii_fold(f"{first} {last}").lower().split()
            )
