"""MIME type, real extension and display name of a legacy file (``dispatch_file.name``/``ext``).

The legacy application stored a file's name and extension apart and concatenated them for
display and storage, so a name that already carried its extension became ``…_l.stl.stl``
(legacy-system.md §1c #21). The *real* extension is therefore ``ext`` (its last dot-separated
segment), or the name's last segment when ``ext`` is blank; never the doubled suffix. The
MIME type is looked up from that extension, so ``scan.stl`` + ``stl`` is ``model/stl``.

The files transform (``include/sql/transform/files.sql``) computes the same values set-based:
:data:`MIME_TYPES` becomes the temporary table ``ref_mime_type``
(:mod:`include.transforms.phase2_codes`), and the SQL carries :data:`REAL_EXTENSION_SQL` and
:data:`DISPLAY_NAME_SQL` verbatim. The unit tests prove the Python functions here and the SQL
give the same answer on arbitrary input (Hypothesis against a real PostgreSQL), so the object
copy and the loaded rows can never disagree about a file's type.

This module is pure: no Airflow, no database driver.
"""

from __future__ import annotations

import re

#: Extension (lower case, no dot) → MIME type. Orthodontic lab files: STL/OBJ/PLY/3MF models,
#: photos and X-rays, DICOM (CBCT), PDFs (prescriptions, plans), ZIP exports, office documents.
#: Registered IANA types where one exists (``model/stl`` since RFC 8555's registry update).
MIME_TYPES: dict[str, str] = {
    "stl": "model/stl",
    "obj": "model/obj",
    "3mf": "model/3mf",
    "ply": "application/x-ply",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "webp": "image/webp",
    "dcm": "application/dicom",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "txt": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
    "xml": "application/xml",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
}

#: MIME type of a file whose extension is missing, malformed or not in :data:`MIME_TYPES`:
#: the bytes are still migrated, only their type is unknown (flagged, never guessed).
DEFAULT_MIME_TYPE = "application/octet-stream"

#: A usable extension: 1-10 ASCII letters or digits (checked before lower-casing, so no
#: locale can turn a non-ASCII letter into an ASCII one).
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")

#: SQL twin of :func:`real_extension` over columns ``name`` and ``ext`` (PostgreSQL's
#: ``btrim`` trims spaces only, like ``str.strip(" ")``; ``'^.*\.'`` is greedy, so it drops
#: everything up to the last dot like ``rsplit('.', 1)[-1]``).
REAL_EXTENSION_SQL = (
    "(select case when seg ~ '^[A-Za-z0-9]{1,10}$' then lower(seg) end from (select case "
    "when regexp_replace(btrim(coalesce(ext, '')), '^.*\\.', '') <> '' "
    "then regexp_replace(btrim(coalesce(ext, '')), '^.*\\.', '') "
    "when strpos(btrim(coalesce(name, '')), '.') > 0 "
    "then regexp_replace(btrim(coalesce(name, '')), '^.*\\.', '') "
    "else '' end as seg) as real_extension)"
)

#: SQL twin of :func:`display_name` over columns ``name``, ``ext`` and ``uid`` (``lower`` under
#: the C collation folds ASCII letters only, like :func:`_ascii_lower`).
DISPLAY_NAME_SQL = (
    "(select case when e = '' or right(lower(stem collate \"C\"), length(e) + 1) "
    "= '.' || lower(e collate \"C\") then stem else stem || '.' || e end from (select "
    "coalesce(nullif(btrim(coalesce(name, '')), ''), lower(uid::text)) as stem, "
    "ltrim(btrim(coalesce(ext, '')), '.') as e) as parts)"
)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _last_segment(text: str) -> str:
    return text.rsplit(".", 1)[-1]


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def real_extension(name: str | None, ext: str | None) -> str | None:
    """The file's real extension, lower case without a dot, or ``None`` if there is none.

    ``ext`` wins (its last dot-separated segment, so ``'stl.stl'`` and ``'.stl'`` are
    ``'stl'``); a blank ``ext`` falls back to the name's last segment. A segment that is not
    1-10 ASCII letters or digits is no extension at all.

    >>> real_extension("136062118_shell_occlusion_l.stl", "stl")
    'stl'
    >>> real_extension("IMG_0042.JPG", "")
    'jpg'
    """
    segment = _last_segment((ext or "").strip(" "))
    if segment == "":
        stem = (name or "").strip(" ")
        segment = _last_segment(stem) if "." in stem else ""
    return _ascii_lower(segment) if _EXTENSION.fullmatch(segment) else None


def mime_type(name: str | None, ext: str | None) -> str:
    """MIME type from the real extension (:data:`DEFAULT_MIME_TYPE` when unknown)."""
    extension = real_extension(name, ext)
    return MIME_TYPES.get(extension or "", DEFAULT_MIME_TYPE)


def display_name(name: str | None, ext: str | None, uid: str) -> str:
    """The file name as users see it, without the legacy double extension.

    The trimmed name (the lower-case ``uid`` when blank) plus ``.<ext>``, unless the name
    already ends with that extension (case-insensitively): ``('x_l.stl', 'stl')`` gives
    ``'x_l.stl'``, not ``'x_l.stl.stl'``.
    """
    stem = (name or "").strip(" ") or uid.lower()
    extension = (ext or "").strip(" ").lstrip(".")
    if extension == "" or _ascii_lower(stem).endswith("." + _ascii_lower(extension)):
        return stem
    return f"{stem}.{extension}"
