import hashlib
import io
import random
import zipfile

import pytest

from include.sandbox.media import media_bytes, media_relative_path

UID = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"


def test_path_convention():
    assert (
        media_relative_path(UID, "136062118_shell_occlusion_l", "stl")
        == "files/3f/3f2504e0-4f89-41d3-9a0c-0305e82c3301/136062118_shell_occlusion_l.stl"
    )


def test_double_extension_is_kept_as_stored():
    path = media_relative_path(UID, "136062118_shell_occlusion_l.stl", "stl")
    assert path.endswith("/136062118_shell_occlusion_l.stl.stl")


@pytest.mark.parametrize(
    ("name", "ext", "filename"),
    [
        ("../../etc/passwd", "txt", ".._.._etc_passwd.txt"),
        ("", "pdf", None),
        ("..", "", None),
        ("a\\b", "", "a_b"),
    ],
)
def test_names_cannot_escape_the_file_directory(name, ext, filename):
    path = media_relative_path(UID, name, ext)
    parts = path.split("/")
    assert len(parts) == 4
    assert parts[:3] == ["files", "3f", UID.lower()]
    if filename:
        assert parts[3] == filename
    else:
        assert parts[3].startswith(UID.lower())


@pytest.mark.parametrize(
    ("ext", "magic"),
    [
        ("stl", b"solid "),
        ("pdf", b"%PDF-1.4"),
        ("png", b"\x89PNG\r\n\x1a\n"),
        ("jpg", b"\xff\xd8\xff"),
        ("zip", b"PK"),
    ],
)
def test_bytes_carry_their_signature_and_are_small(ext, magic):
    content = media_bytes(ext, random.Random(1))
    assert content.startswith(magic)
    assert 100 <= len(content) <= 2_000


def test_dicom_has_its_preamble():
    assert media_bytes("dcm", random.Random(1))[128:132] == b"DICM"


def test_bytes_are_deterministic():
    digest = {
        hashlib.sha256(media_bytes(ext, random.Random(5))).hexdigest()
        for _ in range(2)
        for ext in ["zip"]
    }
    assert len(digest) == 1
    assert media_bytes("stl", random.Random(5)) != media_bytes("stl", random.Random(6))


def test_zip_and_pdf_are_well_formed():
    with zipfile.ZipFile(io.BytesIO(media_bytes("zip", random.Random(2)))) as archive:
        assert archive.testzip() is None
    pdf = media_bytes("pdf", random.Random(2))
    assert pdf.rstrip().endswith(b"%%EOF")
    offset = int(pdf.split(b"startxref\n")[1].split(b"\n")[0])
    assert pdf[offset:].startswith(b"xref")
