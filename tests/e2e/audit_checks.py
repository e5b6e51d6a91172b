"""Checks on what an end-to-end run leaves for auditors: no PHI anywhere, pages that render.

Used by the `make migrate` end-to-end test (tests/e2e/test_airflow_dags.py), so the one
expensive Airflow run also proves the reports and logs it wrote.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from psycopg import sql

from migration_ops.db import connect

#: Debian's Chromium (`.ci/run` installs it); the flags keep it off the network: every host
#: name resolves to nothing and any proxy lookup goes nowhere, so a page that needed a remote
#: resource would render without it (and :func:`remote_references` names it).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def rows_outside_public_and_migration(dsn: str) -> dict[str, int]:
    """Every table outside ``public`` and ``migration`` that holds rows, counted exactly.

    Issue 14: after a successful run no legacy row value rests anywhere else (staging emptied,
    nothing in Supabase's ``auth``, ``storage`` or ``extensions``). Only the system catalogs
    are left out; ``reltuples`` is an estimate, so every table is counted.
    """
    with connect(dsn) as conn:
        tables = conn.execute(
            """
            select n.nspname, c.relname
            from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
            where c.relkind in ('r', 'p', 'm')
                and n.nspname not in ('public', 'migration', 'pg_catalog', 'information_schema')
                and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
            order by 1, 2
            """
        ).fetchall()
        counts = {
            f"{schema}.{table}": conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
            ).fetchone()[0]
            for schema, table in tables
        }
    return {table: rows for table, rows in counts.items() if rows}


#: Birth dates as reports, logs or a spreadsheet export might print them.
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%b %d, %Y")
#: Names that are also ordinary English words a log may print ("mark the run failed"):
#: searched only capitalised or in capitals, every other name in any case.
COMMON_WORDS = frozenset(
    {"mark", "will", "may", "page", "long", "bill", "grant", "rose", "hope", "joy", "hunter"}
)
#: Characters of a message text searched for, from its start and from its end.
TEXT_WINDOW = 40


def _text_windows(texts: list[Any]) -> set[str]:
    """The first and last characters of every text long enough to be unmistakable."""
    out = set()
    for value in texts:
        text = " ".join(str(value or "").split())
        if len(text) >= 20:
            out |= {text[:TEXT_WINDOW], text[-TEXT_WINDOW:]}
    return out


def sandbox_phi(legacy_dsn: str, target_dsn: str | None = None) -> dict[str, set[str]]:
    """Every name, e-mail, birth date and message text of the sandbox, in the forms it may take.

    Names and e-mails are searched case-insensitively (the transform lower-cases and trims
    e-mails), birth dates in several common formats, message texts as legacy holds them and,
    with ``target_dsn``, as the migration repaired them (``public.messages.content``), both
    with their whitespace collapsed.
    """
    with connect(legacy_dsn) as conn:
        names = [
            v
            for (v,) in conn.execute(
                "select first_name from auth_user union select last_name from auth_user"
            )
        ]
        emails = [v for (v,) in conn.execute("select email from auth_user")]
        births = [
            v
            for (v,) in conn.execute(
                "select distinct birthdate from dispatch_patient where birthdate is not null"
            )
        ]
        texts = [
            v
            for (v,) in conn.execute(
                "select text from dispatch_record union all select text from dispatch_comment"
            )
        ]
    if target_dsn is not None:
        with connect(target_dsn) as conn:
            if conn.execute("select to_regclass('public.messages')").fetchone() != (None,):
                texts += [v for (v,) in conn.execute("select content from public.messages")]
    stripped = {str(n).strip() for n in names if n}
    return {
        # 'null' is the sandbox's placeholder for a missing name (the transform empties it)
        "name": {n.lower() for n in stripped if len(n) >= 3 and n.lower() != "null"},
        "email": {e.strip().lower() for e in map(str, emails) if "@" in e},
        "birth date": {d.strftime(f) for d in births for f in DATE_FORMATS},
        "message text": _text_windows(texts),
    }


def phi_found(files: list[Path], phi: dict[str, set[str]]) -> list[str]:
    """``kind in file`` for every PHI value found in the text files among ``files``.

    Binary files (a NUL byte: GX's static images in the Data Docs) are skipped: nothing the
    migration writes is binary, and their bytes spell short names by chance.

    Names as whole words in any case (``COMMON_WORDS`` capitalised only), e-mails in any
    case; birth dates and message texts as they are
    (and message texts with whitespace collapsed, as a log line may re-wrap them).
    """
    any_case = sorted(phi["name"] - COMMON_WORDS)
    capitalised = sorted(
        form for n in phi["name"] & COMMON_WORDS for form in (n.capitalize(), n.upper())
    )
    patterns = [
        re.compile(r"(?<![\w])(" + "|".join(map(re.escape, names)) + r")(?![\w])", flags)
        for names, flags in ((any_case, re.IGNORECASE), (capitalised, re.NOFLAG))
        if names
    ]
    found = []
    for path in files:
        raw = path.read_bytes()
        if b"\0" in raw:
            continue
        text = raw.decode("utf-8", errors="replace")
        lowered, collapsed = text.lower(), " ".join(text.split())
        for pattern in patterns:
            match = pattern.search(text)
            if match:
                found.append(f"name {match.group(1)!r} in {path}")
        if any(value in lowered for value in phi["email"]):
            found.append(f"email in {path}")
        if any(value in text for value in phi["birth date"]):
            found.append(f"birth date in {path}")
        if any(value in collapsed for value in phi["message text"]):
            found.append(f"message text in {path}")
    return found


def remote_references(html: str) -> list[str]:
    """Every http(s) or protocol-relative URL a page loads or links (src, href, CSS url())."""
    pattern = r"""(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)|url\(\s*["']?((?:https?:)?//[^)"']+)"""
    return [a or b for a, b in re.findall(pattern, html, flags=re.IGNORECASE)]


def screenshot(page: Path, png: Path, *, height: int = 2400) -> Path:
    """Render ``page`` offline in headless Chromium and save a PNG of it.

    Chromium's profile lives in a temporary directory, so ``png`` may go straight to docs/.
    """
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run(  # noqa: S603 - the system's Chromium on our own file
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size=1280,{height}",
                f"--screenshot={png}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return png
