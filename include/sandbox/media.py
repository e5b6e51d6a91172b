"""The sandbox's legacy media store: where a dispatch_file's bytes live, and what they are.

Layout (relative to the media root)::

    files/<uid[0:2]>/<uid>/<name>.<ext>

``uid`` is ``dispatch_file.uid`` in canonical lower-case form; the first two characters
shard the directory as media stores usually do. The file name is the legacy
concatenation of ``name`` and ``ext`` (that concatenation is what produced the
``..._l.stl.stl`` double extensions of §1c #21), with path separators replaced so a name
can never escape its directory. Phase 2 copies objects from here to Supabase Storage.

The bytes are small (a few hundred bytes) and deterministic per file, and carry the right
signature for their extension (ASCII STL, PDF, PNG, ZIP, DICOM preamble, JPEG markers) so
MIME sniffing and checksums behave as with real uploads.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

_UNSAFE = str.maketrans({"/": "_", "\\": "_", "\x00": "_"})


def media_relative_path(uid: str, name: str, ext: str) -> str:
    """Relative path of a dispatch_file's bytes in the legacy media store (see module doc)."""
    uid = uid.lower()
    stem = (name or uid).translate(_UNSAFE)
    if stem in {".", ".."}:
        stem = uid
    filename = f"{stem}.{ext.translate(_UNSAFE)}" if ext else stem
    return f"files/{uid[:2]}/{uid}/{filename}"


def media_bytes(ext: str, rng: random.Random) -> bytes:
    """Deterministic content for a file with extension ``ext`` (a few hundred bytes)."""
    builder = _BUILDERS.get(ext.lower(), _text)
    return builder(rng)


def _stl(rng: random.Random) -> bytes:
    lines = ["solid sandbox"]
    for _ in range(3):
        points = [" ".join(f"{rng.uniform(-20, 20):.3f}" for _ in range(3)) for _ in range(3)]
        lines += ["  facet normal 0 0 1", "    outer loop"]
        lines += [f"      vertex {p}" for p in points]
        lines += ["    endloop", "  endfacet"]
    lines.append("endsolid sandbox")
    return ("\n".join(lines) + "\n").encode("ascii")


def _pdf(rng: random.Random) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        f"<< /Title (Treatment plan {rng.randrange(10**6):06d}) >>".encode("ascii"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += b"".join(f"{offset:010d} 00000 n \n".encode("ascii") for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 4 0 R >>\n".encode("ascii")
    out += f"startxref\n{xref}\n%%EOF\n".encode("ascii")
    return bytes(out)


def _png(rng: random.Random) -> bytes:
    width = height = 8

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(width)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _jpg(rng: random.Random) -> bytes:
    comment = f"sandbox photo {rng.randrange(10**9):09d}".encode("ascii")
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", len(app0) + 2)
        + app0
        + b"\xff\xfe"
        + struct.pack(">H", len(comment) + 2)
        + comment
        + bytes(rng.randrange(256) for _ in range(160))
        + b"\xff\xd9"
    )


def _zip(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("export/readme.txt", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, f"sandbox export {rng.randrange(10**9):09d}\n")
    return buffer.getvalue()


def _dcm(rng: random.Random) -> bytes:
    return bytes(128) + b"DICM" + bytes(rng.randrange(256) for _ in range(200))


def _text(rng: random.Random) -> bytes:
    return f"sandbox file {rng.randrange(10**9):09d}\n".encode("ascii") * 8


_BUILDERS = {"stl": _stl, "pdf": _pdf, "png": _png, "jpg": _jpg, "zip": _zip, "dcm": _dcm}
