"""``make demo`` ends with the two pages an auditor opens (issue 18): after the search."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest

from migration_ops import cli


@pytest.fixture
def demo_steps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The demo with its expensive steps replaced; the pages of one run under ``tmp_path``."""
    reports = tmp_path / "reports"
    monkeypatch.setenv("MIGRATION_REPORTS_DIR", str(reports))
    monkeypatch.setenv("AIRFLOW_CONN_SUPABASE_DB", "postgresql://target@localhost/target")
    monkeypatch.setattr(cli, "_prepare_environment", lambda **_: None)
    monkeypatch.setattr(cli, "_sandbox", lambda scale, seed: ("legacy", tmp_path))
    monkeypatch.setattr(cli, "_local_storage", lambda *_: nullcontext())
    monkeypatch.setattr(cli, "migrate", lambda: 0)
    monkeypatch.setattr(cli, "_demo_search", lambda: print("semantic search: 5 hits"))
    monkeypatch.setattr(cli, "_latest_phase_run", lambda dsn: "migrate_phase_5_ai__manual:1")
    return reports


def test_demo_prints_the_report_and_the_sign_off_last(demo_steps, capsys) -> None:
    report = demo_steps / "migrate_phase_5_ai__manual-1" / "report.html"
    signoff = demo_steps / "signoff" / "signoff.html"
    for page in (report, signoff):
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    assert cli.demo(0.01, 1) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:] == [
        "semantic search: 5 hits",
        f"HTML report: {report}",
        f"sign-off summary: {signoff}",
    ]


def test_demo_says_which_page_was_not_written(demo_steps, capsys) -> None:
    assert cli.demo(0.01, 1) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "HTML report: not written",
        "sign-off summary: not written",
    ]
