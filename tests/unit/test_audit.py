"""Pure parts of the audit package: drift report, sign-off verdict, page cells, charts."""

from __future__ import annotations

from migration_ops.audit import charts, pages, preflight, report, signoff
from migration_ops.audit.row_validation import RowValidation, _split


def _catalog() -> dict[str, dict[str, str]]:
    return {
        table: dict.fromkeys(columns, "integer")
        for table, columns in preflight.spec_columns().items()
    }


def test_drift_names_missing_table_missing_column_and_changed_type() -> None:
    catalog = _catalog()
    expected = {t: dict(c) for t, c in catalog.items()}
    del catalog["dispatch_category"]
    del catalog["auth_user"]["last_login"]
    expected["dispatch_office"]["tax_rate"] = "numeric(8,4)"
    failures = {(c.name, c.detail) for c in preflight.drift_checks(catalog, expected)}
    assert failures == {
        ("dispatch_category", "table missing"),
        ("auth_user.last_login", "column missing"),
        ("dispatch_office.tax_rate", "type changed: numeric(8,4) → integer"),
    }
    ok = preflight.drift_checks(_catalog(), {t: dict(c) for t, c in _catalog().items()})
    assert [(c.status, c.name) for c in ok] == [("ok", "drift")]


def test_every_defect_block_names_a_class_and_a_table() -> None:
    blocks = preflight._defect_blocks()
    assert [(d, t) for d, t, _ in blocks] == [
        ("orphan", "dispatch_patient"),
        ("orphan", "dispatch_instruction"),
        ("orphan", "dispatch_state"),
        ("orphan", "dispatch_comment"),
        ("bad_email", "auth_user"),
        ("unknown_code", "dispatch_state"),
        ("mis_encoded_text", "dispatch_record"),
        ("mis_encoded_text", "dispatch_comment"),
    ]
    assert all(q.lower().startswith("select count(*)") for _, _, q in blocks)


def test_sign_off_verdict_names_each_reason() -> None:
    phase = {
        "status": "validated",
        "balanced": True,
        "mismatched": 0,
        "missing": 0,
        "unexpected": 0,
        "backup_id": 7,
    }
    good = {"phases": [{**phase, "phase": n} for n in (1, 2, 3, 4, 5)], "verify_target": None}
    assert signoff.verdict(good) == []
    bad = {
        "phases": [
            {**phase, "phase": 1, "missing": 2},
            {**phase, "phase": 2, "backup_id": None},
            {**phase, "phase": 3, "status": "failed"},
        ],
        "verify_target": {"run_id": "v1", "status": "failed"},
    }
    assert signoff.verdict(bad) == [
        "phase 1: rows differ from legacy after the load",
        "phase 2: no verified backup",
        "phase 3: latest run failed",
        "phase 4 has not run",
        "phase 5 has not run",
        "latest verify_target (v1) failed",
    ]


def test_cells_are_escaped_and_statuses_coloured() -> None:
    assert pages.cell("<b>x</b>") == "<td>&lt;b&gt;x&lt;/b&gt;</td>"
    assert pages.cell(True) == '<td class="ok">ok</td>'
    assert pages.cell(12) == '<td class="n">12</td>'
    assert pages.cell(pages.Link("../a/report.html", "a&b")) == (
        '<td><a href="../a/report.html">a&amp;b</a></td>'
    )


def test_row_validation_ok_and_sql_split() -> None:
    assert RowValidation(5, 5, 0, 0, 0, "checksum").ok
    assert not RowValidation(5, 5, 0, 0, 1, "row_by_row").ok
    assert _split("select 1;\nselect 2;\n-- trailing\n") == ["select 1", "select 2"]


def test_fix_and_meaning_of_a_rule() -> None:
    assert report.fix_for("orders.patient_resolves").startswith("fix the parent's own quarantine")
    assert "well-formed" in report.rule_meanings()["profiles.email_format"]


def test_charts_are_svg_with_text_and_no_date(tmp_path) -> None:
    path = charts.counts({"profiles.email_format": 3}, tmp_path / "q.svg", title="Q", xlabel="rows")
    svg = path.read_text()
    assert svg.startswith("<?xml") and "profiles.email_format" in svg
    assert "<dc:date>" not in svg


def test_time_chart_places_each_step_at_its_own_start(tmp_path) -> None:
    """Two entities that ran side by side overlap on the time axis instead of adding up."""
    timings = [
        {"entity": "", "step": "extract", "start": 0.0, "seconds": 2.0},
        {"entity": "offices", "step": "transform", "start": 2.0, "seconds": 3.0},
        {"entity": "order_types", "step": "transform", "start": 2.0, "seconds": 3.0},
        {"entity": "offices", "step": "load", "start": 5.0, "seconds": 1.0},
    ]
    svg = charts.steps(timings, tmp_path / "time.svg").read_text()
    for label in ("(phase)", "offices", "order_types", "extract", "transform", "load"):
        assert f">{label}<" in svg, label
    # the x axis ends near 6 s (the latest end), not at 9 s (the sum of the step durations)
    assert ">6<" in svg and ">8<" not in svg
