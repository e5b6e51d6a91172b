"""Checks on what an end-to-end run leaves for auditors: no PHI anywhere, pages that render.

Used by the `make migrate` end-to-end test (tests/e2e/test_airflow_dags.py), so the one
expensive Airflow run also proves the reports and logs it wrote.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from migration_ops.db import connect

#: Debian's Chromium (`.ci/run` installs it); the flags keep it off the closed network.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def sandbox_phi(legacy_dsn: str) -> dict[str, set[str]]:
    """Every name, e-mail, birth date and message text of the sandbox legacy database."""
    with connect(legacy_dsn) as conn:
        names = {
            str(v).strip()
            for (v,) in conn.execute(
                "select first_name from auth_user union select last_name from auth_user"
            ).fetchall()
        }
        emails = {
            str(v).strip()
            for (v,) in conn.execute("select email from auth_user where btrim(email) <> ''")
        }
        births = {
            v.isoformat()
            for (v,) in conn.execute(
                "select distinct birthdate from dispatch_patient where birthdate is not null"
            )
        }
        texts = {
            str(v).strip()[:40]
            for (v,) in conn.execute(
                "select text from dispatch_record union all select text from dispatch_comment"
            )
            if v and len(str(v).strip()) >= 20
        }
    return {
        # 'null' is the sandbox's placeholder for a missing name (the transform empties it)
        "name": {n for n in names if len(n) >= 3 and n.lower() != "null"},
        "email": {e for e in emails if "@" in e},
        "birth date": births,
        "message text": texts,
    }


def phi_found(files: list[Path], phi: dict[str, set[str]]) -> list[str]:
    """``kind in file`` for every PHI value found (names as whole, case-sensitive words)."""
    name_pattern = re.compile(
        r"(?<![\w])(" + "|".join(re.escape(n) for n in sorted(phi["name"])) + r")(?![\w])"
    )
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        match = name_pattern.search(text)
        if match:
            found.append(f"name {match.group(1)!r} in {path}")
        for kind in ("email", "birth date", "message text"):
            if any(value in text for value in phi[kind]):
                found.append(f"{kind} in {path}")
    return found


def screenshot(page: Path, png: Path, *, height: int = 2400) -> Path:
    """Render ``page`` offline in headless Chromium and save a PNG of it."""
    profile = png.parent / f".chromium-{png.stem}"
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
