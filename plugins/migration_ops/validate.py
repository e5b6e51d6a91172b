"""Validate step: Great Expectations suites on staged rows, quarantine by rule, then a gate.

How the work is split (see ``docs/decisions/0002-gx-decides-sql-moves.md``):

1. GX runs the entity's suite on ``staging.<entity>__transformed`` through its SQL engine.
2. For every failing *row-level* expectation (``meta.row_level``), GX also returns the SQL
   that selects the failing rows' legacy ids (``unexpected_index_query``). The database
   stages those ids with one ``INSERT ... SELECT``: no rows travel through Python, however
   many fail. They reach ``migration.quarantine`` only with the load (see
   :mod:`migration_ops.quarantine`), so a blocked load leaves the history as it was.
3. Those ids are staged as this run's quarantine decisions, ``staging.<entity>__validated``
   is rebuilt from the transformed rows minus them, and the whole suite runs again on it.
   Anything still failing, a suite-level expectation such as key uniqueness, or a
   quarantine rate above the run's limit, raises
   :class:`~migration_ops.errors.ValidationFailed` and the load never starts.

Results are reduced to counts before they are stored or logged: GX result dictionaries carry
sample values, which may be PHI.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops import load, quarantine
from migration_ops.db import connect
from migration_ops.errors import MigrationError, ValidationFailed
from migration_ops.settings import EXPECTATIONS_DIR

log = logging.getLogger(__name__)

#: Result keys that are safe to keep: counts and percentages, never values.
_COUNT_KEYS = ("element_count", "unexpected_count", "missing_count", "unexpected_percent")


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result, reduced to what an auditor may read (no values)."""

    type: str
    column: str | None
    rule: str
    row_level: bool
    success: bool
    counts: dict[str, float]
    unexpected_index_query: str | None

    def as_record(self) -> dict[str, Any]:
        """JSON-ready form stored in ``migration.validation_results``."""
        return {
            "type": self.type,
            "column": self.column,
            "rule": self.rule,
            "row_level": self.row_level,
            "success": self.success,
            **self.counts,
        }


@dataclass(frozen=True)
class QuarantineLimit:
    """How many quarantined rows an entity tolerates before the run fails.

    A handful of bad rows is normal and goes to the quarantine; a large share means a
    systematic defect (a wrong mapping, a changed legacy convention) that must stop the
    migration instead of being set aside row by row. The limit is the larger of an absolute
    allowance (so one bad row among nine offices does not fail a small table) and a share
    of the entity's rows.

    Attributes:
        fraction: share of the entity's rows that may be quarantined.
        allowance: rows that may always be quarantined, whatever the share.
    """

    fraction: float = 0.05
    allowance: int = 25

    def exceeded(self, quarantined: int, total: int) -> bool:
        """True when ``quarantined`` of ``total`` rows is more than the limit allows."""
        return quarantined > max(self.allowance, self.fraction * total)


@dataclass(frozen=True)
class ValidationOutcome:
    """What the validate step hands on: counts only."""

    transformed_rows: int
    quarantined_rows: int
    validated_rows: int


def load_suite(entity: EntitySpec) -> dict[str, Any]:
    """Read the entity's suite (``expectations/<file>``) as a dictionary."""
    path = EXPECTATIONS_DIR / entity.suite
    suite: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for expectation in suite["expectations"]:
        meta = expectation.get("meta", {})
        if "rule" not in meta:
            raise MigrationError(
                entity.name, f"expectation {expectation['type']} in {path.name} has no meta.rule"
            )
    return suite


def sqlalchemy_url(dsn: str) -> str:
    """Turn a libpq URI into the SQLAlchemy URL GX needs (psycopg 3 driver)."""
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError("target DSN must be a postgresql:// URI")
    return "postgresql+psycopg://" + dsn.split("://", 1)[1]


def run_suite(target_dsn: str, entity: EntitySpec, table: str) -> list[ExpectationOutcome]:
    """Run the entity's suite with GX on ``staging.<table>`` and reduce the results.

    Args:
        target_dsn: target database URI.
        entity: the entity spec (its suite and key).
        table: staging table name without schema, e.g. ``offices__transformed``.
    """
    warnings.filterwarnings("ignore", module="great_expectations")
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite_definition = load_suite(entity)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    datasource = context.data_sources.add_sql(
        "target", connection_string=sqlalchemy_url(target_dsn)
    )
    asset = datasource.add_table_asset(table, table_name=table, schema_name="staging")
    batch = asset.add_batch_definition_whole_table("all_rows").get_batch()
    suite = gx.ExpectationSuite(name=suite_definition["name"])
    for expectation in suite_definition["expectations"]:
        configuration = ExpectationConfiguration(
            type=expectation["type"], kwargs=expectation["kwargs"], meta=expectation.get("meta", {})
        )
        suite.add_expectation(configuration.to_domain_obj())
    result = batch.validate(
        suite,
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": [entity.key],
            "return_unexpected_index_query": True,
            "partial_unexpected_count": 0,
        },
    )
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        assert config is not None
        meta = config.meta or {}
        details = item.result or {}
        counts = {
            k: float(details[k]) for k in _COUNT_KEYS if isinstance(details.get(k), int | float)
        }
        observed = details.get("observed_value")
        if isinstance(observed, int | float) and not isinstance(observed, bool):
            counts["observed_value"] = float(observed)  # table-level aggregates only (row counts)
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise MigrationError(
                entity.name,
                f"expectation {config.type} could not be evaluated (check its kwargs in "
                f"{entity.suite})",
                rule=meta.get("rule"),
            )
        query = details.get("unexpected_index_query")
        outcomes.append(
            ExpectationOutcome(
                type=config.type,
                column=config.kwargs.get("column"),
                rule=str(meta["rule"]),
                row_level=bool(meta.get("row_level", False)),
                success=bool(item.success),
                counts=counts,
                unexpected_index_query=query if isinstance(query, str) else None,
            )
        )
    return outcomes


def _record(
    target_dsn: str,
    entity: EntitySpec,
    run_id: str,
    pass_name: str,
    outcomes: list[ExpectationOutcome],
) -> None:
    suite_name = load_suite(entity)["name"]
    failed = [o for o in outcomes if not o.success]
    with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
        conn.execute(
            """
            insert into migration.validation_results
                (run_id, entity, pass, suite, success, evaluated, failed, results)
            values (%s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (run_id, entity, pass) do update set
                success = excluded.success, evaluated = excluded.evaluated,
                failed = excluded.failed, results = excluded.results, recorded_at = now()
            """,
            (
                run_id,
                entity.name,
                pass_name,
                suite_name,
                not failed,
                len(outcomes),
                len(failed),
                json.dumps([o.as_record() for o in outcomes]),
            ),
        )


def hold_back_failures(
    target_dsn: str, entity: EntitySpec, failing: list[ExpectationOutcome]
) -> None:
    """Stage the rows that failed row-level expectations as this run's quarantine decisions.

    They reach ``migration.quarantine`` only with the load (see :mod:`migration_ops.quarantine`).
    """
    with connect(target_dsn, application_name=f"migration:quarantine:{entity.name}") as conn:
        for outcome in failing:
            if outcome.unexpected_index_query is None:
                raise MigrationError(
                    entity.name,
                    f"row-level expectation {outcome.type} gave no row query; mark it suite-level",
                    rule=outcome.rule,
                )
            detail = (
                f"{outcome.type} failed on column {outcome.column}"
                if outcome.column
                else outcome.type
            )
            # The query is GX's rendering of our own reviewed suite (identifiers and suite
            # constants), not data.
            quarantine.hold_back(
                conn,
                entity,
                rule=outcome.rule,
                detail=detail,
                failing_rows=sql.SQL(outcome.unexpected_index_query.strip().rstrip(";")),
            )


def validate_entity(
    target_dsn: str,
    entity: EntitySpec,
    run_id: str,
    *,
    limit: QuarantineLimit,
    skip_unchanged: bool = False,
) -> ValidationOutcome:
    """Run the suite, quarantine row-level failures, re-run it on what will load.

    Args:
        target_dsn: target database URI.
        entity: the entity spec.
        run_id: the migration run id (quarantine and results are keyed by it).
        limit: how many quarantined rows the entity tolerates (see :class:`QuarantineLimit`).
        skip_unchanged: a sync's delta whose rows are all already in the target exactly as
            transformed (an empty delta, a look-back window read again) is not handed to Great
            Expectations: those rows passed the suite when they loaded, and two suite runs per
            entity are most of a quiet night's cost.

    Raises:
        ValidationFailed: a suite-level expectation failed, rows still fail after the
            quarantine, or too many rows were quarantined.
    """
    with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
        quarantine.reset(conn, entity)  # a retried validate decides afresh
        unchanged = skip_unchanged and load.differing_rows(conn, entity, "transformed") == 0
    if unchanged:
        _, validated_rows = quarantine.rebuild_validated(target_dsn, entity)
        log.info(
            "%s: %d rows, all as in the target: not validated again", entity.name, validated_rows
        )
        return ValidationOutcome(validated_rows, quarantined_rows=0, validated_rows=validated_rows)
    first = run_suite(target_dsn, entity, f"{entity.name}__transformed")
    _record(target_dsn, entity, run_id, "transformed", first)
    suite_level = [o.rule for o in first if not o.success and not o.row_level]
    if suite_level:
        raise ValidationFailed(
            entity.name, f"suite-level expectations failed: {suite_level}; load blocked"
        )
    row_failures = [o for o in first if not o.success and o.row_level]
    hold_back_failures(target_dsn, entity, row_failures)
    quarantined, validated_rows = quarantine.rebuild_validated(target_dsn, entity)
    transformed_rows = quarantined + validated_rows
    if limit.exceeded(quarantined, transformed_rows):
        raise ValidationFailed(
            entity.name,
            f"{quarantined} of {transformed_rows} rows quarantined, above the run's limit "
            f"(max of {limit.allowance} rows and {limit.fraction:.1%}); see migration.quarantine",
        )
    second = run_suite(target_dsn, entity, f"{entity.name}__validated")
    _record(target_dsn, entity, run_id, "validated", second)
    still_failing = [o.rule for o in second if not o.success]
    if still_failing:
        raise ValidationFailed(
            entity.name, f"rows still fail after quarantine: {still_failing}; load blocked"
        )
    log.info("%s: %d rows validated, %d quarantined", entity.name, validated_rows, quarantined)
    return ValidationOutcome(
        transformed_rows=transformed_rows,
        quarantined_rows=quarantined,
        validated_rows=validated_rows,
    )
