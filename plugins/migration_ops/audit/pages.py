"""Static HTML pages for auditors: no JavaScript, no network, printable, value-free.

Every page is one self-contained file (inline CSS; charts are SVG files beside it, linked by
relative path), so a report directory can be copied, archived with the backups and opened
offline. Everything shown is an id, a count, a rule name or a time; cells are escaped.

Not named ``html``: Airflow imports every module under ``plugins/`` by its file name, and a
``html`` module there would shadow the standard library's for the whole process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_ops.settings import reports_dir

if TYPE_CHECKING:
    from migration_ops.audit.preflight import Preflight

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:86rem;color:#1d2733;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:3px solid #1d4e89;padding-bottom:.3rem}
h2{font-size:1.2rem;margin-top:2rem;color:#1d4e89}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #c8d0da;padding:.25rem .6rem;text-align:left} td a{overflow-wrap:anywhere}
th{background:#eef2f7} td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17692d;font-weight:600} .fail{color:#b3261e;font-weight:700}
.warn{color:#8a5a00;font-weight:600} .muted{color:#5b6675;font-size:.85rem}
figure{margin:1rem 0} figure img{max-width:100%;border:1px solid #e1e6ed}
code{background:#f3f5f8;padding:0 .2rem}
"""


@dataclass(frozen=True)
class Link:
    """A table cell that links to another page of the reports (relative path)."""

    href: str
    text: str


def cell(value: Any) -> str:
    """One escaped table cell; numbers right-aligned, statuses coloured, links linked."""
    if isinstance(value, Link):
        return f'<td><a href="{escape(value.href)}">{escape(value.text)}</a></td>'
    if isinstance(value, bool):
        value = "ok" if value else "fail"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="n">{value}</td>'
    text = "" if value is None else str(value)
    css = f' class="{text}"' if text in ("ok", "fail", "warn") else ""
    return f"<td{css}>{escape(text)}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table of already value-free cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(src: str, caption: str) -> str:
    """A chart (a static SVG beside the page) with its caption."""
    return (
        f'<figure><img src="{escape(src)}" alt="{escape(caption)}">'
        f"<figcaption class='muted'>{escape(caption)}</figcaption></figure>"
    )


def page(title: str, body: Sequence[str]) -> str:
    """A complete, self-contained HTML document."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{''.join(body)}"
        f"<p class='muted'>Generated {generated}. Ids, counts, rule names and times only: "
        "no legacy values.</p></body></html>"
    )


def status(ok: bool) -> str:
    """Inline status word."""
    return "<span class='ok'>passed</span>" if ok else "<span class='fail'>FAILED</span>"


def write_preflight(result: Preflight, directory: Path | None = None) -> Path:
    """Write ``preflight.html`` and ``preflight.json``; return their directory."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    out = (directory or reports_dir()) / f"preflight-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    data = result.as_dict()
    (out / "preflight.json").write_text(json.dumps(data, indent=2, default=str), "utf-8")
    failures = result.failures
    body = [
        f"<p>Result: {status(not failures)} — {len(result.checks)} checks, "
        f"{len(failures)} failed. Started {escape(result.started_at)}. Nothing was changed in "
        "either database.</p>",
        "<h2>Checks</h2>",
        table(
            ("area", "check", "status", "detail"),
            ((c.area, c.name, c.status, c.detail) for c in result.checks),
        ),
        "<h2>Volumes (every legacy table each entity reads; its primary table against its "
        "last run)</h2>",
        table(
            ("entity", "legacy table", "primary", "rows now", "last run", "change"),
            (
                (
                    v["entity"],
                    v["table"],
                    "yes" if v["primary"] else "",
                    "not checked" if v["rows"] is None else v["rows"],
                    v["last_run"],
                    v["change"],
                )
                for v in result.volumes
            ),
        ),
        "<h2>Defect profile (rows per defect class the transforms handle)</h2>",
        table(
            ("defect class", "legacy table", "rows"),
            (
                (d["defect"], d["table"], "not checked" if d["rows"] is None else d["rows"])
                for d in result.defects
            ),
        ),
    ]
    (out / "preflight.html").write_text(page("Migration preflight", body), "utf-8")
    return out
