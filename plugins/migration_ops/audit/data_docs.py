"""Great Expectations Data Docs of one run, built from what the run recorded, kept with it.

Validation happens while the staging exists; the report is written after it is dropped. So
the run's GX results are rebuilt from ``migration.validation_results`` (expectation, rule,
success and counts: what :mod:`migration_ops.validate` keeps, never a value) with each
expectation's configuration from its suite, stored in a file-based GX context inside the
report directory, and GX renders its own Data Docs site there. GX's pages link its CSS and
scripts from CDNs: offline they read unstyled; ``report.html`` itself needs nothing.
"""

from __future__ import annotations

import logging
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from migration_ops.settings import EXPECTATIONS_DIR

log = logging.getLogger(__name__)
COUNT_KEYS = (
    "element_count",
    "unexpected_count",
    "missing_count",
    "unexpected_percent",
    "observed_value",
)


def _suite_configs(suite_name: str) -> dict[str, dict[str, Any]]:
    import json

    name = suite_name if suite_name.endswith(".json") else f"{suite_name}.json"
    suite = json.loads((EXPECTATIONS_DIR / name).read_text(encoding="utf-8"))
    return {e["meta"]["rule"]: e for e in suite["expectations"] if "rule" in e.get("meta", {})}


def _suite_result(row: dict[str, Any], run: Any) -> Any:
    """One entity pass as a GX ExpectationSuiteValidationResult (counts only)."""
    from great_expectations.core import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    configs = _suite_configs(row["suite"])
    results = []
    for item in row["results"]:
        spec = configs.get(item["rule"], {"type": item["type"], "kwargs": {}, "meta": {}})
        config = ExpectationConfiguration(
            type=spec["type"], kwargs=spec["kwargs"], meta=spec.get("meta", {})
        )
        counts = {k: item[k] for k in COUNT_KEYS if k in item}
        results.append(
            ExpectationValidationResult(
                success=bool(item["success"]), expectation_config=config, result=counts
            )
        )
    passed = sum(1 for r in results if r.success)
    statistics = {
        "evaluated_expectations": len(results),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(results) - passed,
        "success_percent": 100.0 * passed / len(results) if results else 100.0,
    }
    return ExpectationSuiteValidationResult(
        success=bool(row["success"]),
        results=results,
        suite_name=row["entity"],
        statistics=statistics,
        meta={"run_id": run, "active_batch_definition": None},
    )


def build(out: Path, run_id: str, started_at: str | None, validation: list[dict[str, Any]]) -> str:
    """Build the run's Data Docs under ``out/gx``; return the index path relative to ``out``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    warnings.filterwarnings("ignore", module="great_expectations")
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = gx.get_context(mode="file", project_root_dir=str(out))
    run_time = datetime.fromisoformat(started_at) if started_at else None
    run = RunIdentifier(run_name=run_id, run_time=run_time)
    for row in validation:
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=row["entity"]),
            run_id=run,
            batch_identifier=row["pass"],
        )
        context.validation_results_store.set(key, _suite_result(row, run))
    sites = context.build_data_docs()
    index = Path(str(sites["local_site"]).removeprefix("file://"))
    return str(index.relative_to(out.resolve()))
