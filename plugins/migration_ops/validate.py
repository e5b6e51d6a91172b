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

Only what would change the target is handed to GX (issue 20): on a rerun or a sync the
transformed rows already in the target exactly as transformed passed the suite when they loaded,
so the row-local expectations run on ``staging.<entity>__changed`` (the rows the load's
anti-join would write) and the expectations over the whole entity (columns, uniqueness, the
suite's own queries) run set-based in SQL on every transformed row
(:mod:`migration_ops.entity_checks`). A first load, or the first run after the entity's suite
changed (``migration.validation_results.suite_sha256``), validates every row with GX. A
held-back row that comes back unchanged keeps its recorded verdict without GX
(:mod:`migration_ops.verdicts`). When no row was quarantined the validated rows are the
transformed rows, and the first pass's results stand for the second.

Results are reduced to counts before they are stored or logged: GX result dictionaries carry
sample values, which may be PHI.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops import entity_checks, load, quarantine, verdicts
from migration_ops.db import column_parts, connect, qualified, read_sql, scalar
from migration_ops.errors import MigrationError, ValidationFailed
from migration_ops.progress import started
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
    scope: str = "all rows"

    def as_record(self) -> dict[str, Any]:
        """JSON-ready form stored in ``migration.validation_results``."""
        return {
            "type": self.type,
            "column": self.column,
            "rule": self.rule,
            "row_level": self.row_level,
            "success": self.success,
            "scope": self.scope,
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


def run_suite(
    target_dsn: str,
    entity: EntitySpec,
    table: str,
    expectations: list[dict[str, Any]] | None = None,
) -> list[ExpectationOutcome]:
    """Run the entity's suite (or ``expectations`` of it) with GX on ``staging.<table>``.

    Args:
        target_dsn: target database URI.
        entity: the entity spec (its suite and key).
        table: staging table name without schema, e.g. ``offices__transformed``.
        expectations: a part of the suite; all of it when ``None``. An empty part runs nothing
            (and does not import GX).
    """
    suite_definition = load_suite(entity)
    chosen = suite_definition["expectations"] if expectations is None else expectations
    if not chosen:
        return []
    warnings.filterwarnings("ignore", module="great_expectations")
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    datasource = context.data_sources.add_sql(
        "target", connection_string=sqlalchemy_url(target_dsn)
    )
    asset = datasource.add_table_asset(table, table_name=table, schema_name="staging")
    batch = asset.add_batch_definition_whole_table("all_rows").get_batch()
    suite = gx.ExpectationSuite(name=suite_definition["name"])
    for expectation in chosen:
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
    return [_outcome(entity, item) for item in result.results]


def _outcome(entity: EntitySpec, item: Any) -> ExpectationOutcome:
    """One GX result reduced to counts (no values)."""
    config = item.expectation_config
    assert config is not None
    meta = config.meta or {}
    details = item.result or {}
    counts = {k: float(details[k]) for k in _COUNT_KEYS if isinstance(details.get(k), int | float)}
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
    return ExpectationOutcome(
        type=config.type,
        column=config.kwargs.get("column"),
        rule=str(meta["rule"]),
        row_level=bool(meta.get("row_level", False)),
        success=bool(item.success),
        counts=counts,
        unexpected_index_query=query if isinstance(query, str) else None,
    )


@dataclass(frozen=True)
class Scope:
    """Which rows of an entity this run's suite has to judge.

    Attributes:
        rows: transformed rows of the entity (this run's extract: all rows, or a sync's delta).
        changed: of them, rows that would change the target (``staging.<entity>__changed``).
        whole: GX judges every transformed row (a first load, or a suite changed since the
            entity last validated); otherwise only the changed rows, and the whole-entity
            expectations run in SQL.
        suite_sha256: fingerprint of the suite file, recorded with the results.
        carried: held-back rows that came back unchanged and kept their recorded verdict
            (:mod:`migration_ops.verdicts`); not among ``changed``.
    """

    rows: int
    changed: int
    whole: bool
    suite_sha256: str
    carried: int = 0


def suite_fingerprint(entity: EntitySpec) -> str:
    """sha256 of the entity's suite file: a changed suite re-validates every row once."""
    return hashlib.sha256((EXPECTATIONS_DIR / entity.suite).read_bytes()).hexdigest()


def decide_scope(conn: psycopg.Connection[Any], entity: EntitySpec) -> Scope:
    """Stage the changed rows and decide whether GX must see every row (see :class:`Scope`)."""
    fingerprint = suite_fingerprint(entity)
    transformed = qualified(entity.staging_table("transformed"))
    rows = int(scalar(conn, sql.SQL("select count(*) from {}").format(transformed)))
    last = scalar(
        conn,
        "select suite_sha256 from migration.validation_results where entity = %s and success "
        "order by recorded_at desc limit 1",
        (entity.name,),
    )
    if last != fingerprint:
        # no comparison with the target: the load then reads every validated row
        conn.execute(
            sql.SQL("drop table if exists {}").format(qualified(entity.staging_table("changed")))
        )
        return Scope(rows, rows, whole=True, suite_sha256=fingerprint)
    changed = stage_changed_rows(conn, entity)
    carried = verdicts.carry_over(conn, entity, fingerprint)
    return Scope(rows, changed - carried, False, fingerprint, carried)


def stage_changed_rows(conn: psycopg.Connection[Any], entity: EntitySpec) -> int:
    """``staging.<entity>__changed``: the transformed rows the load would write; their count."""
    changed = qualified(entity.staging_table("changed"))
    columns = load.loadable_columns(conn, entity, "transformed")
    conn.execute(sql.SQL("drop table if exists {}").format(changed))
    conn.execute(
        sql.SQL(read_sql("validate/changed_rows.sql")).format(
            changed=changed,
            transformed=qualified(entity.staging_table("transformed")),
            target=qualified(entity.target_table),
            key=sql.Identifier(entity.conflict_key),
            **column_parts(columns, entity.conflict_key, "s"),
        )
    )
    return int(scalar(conn, sql.SQL("select count(*) from {}").format(changed)))


def judge(
    target_dsn: str, entity: EntitySpec, scope: Scope, pass_name: str
) -> list[ExpectationOutcome]:
    """One pass of the suite over ``staging.<entity>__<pass_name>`` as far as ``scope`` needs.

    Results come in the suite's order, each saying which rows it judged.
    """
    table = f"{entity.name}__{pass_name}"
    if scope.whole:
        return run_suite(target_dsn, entity, table)
    suite = load_suite(entity)["expectations"]
    in_sql = [e for e in suite if e["type"] in entity_checks.SQL_TYPES]
    whole_gx = [e for e in suite if e not in in_sql and entity_checks.needs_whole_entity(e)]
    local = [e for e in suite if not entity_checks.needs_whole_entity(e)]
    changed = f"{entity.name}__changed"
    if scope.changed:
        outcomes = [
            replace(o, scope="changed rows") for o in run_suite(target_dsn, entity, changed, local)
        ]
    else:  # nothing to judge: every row-local expectation holds, on no row
        outcomes = [_outcome_without_gx(e, True, _NO_ROWS, "changed rows (none)") for e in local]
    # a share over the entity (`mostly`) can only have moved if some row did
    outcomes += run_suite(target_dsn, entity, table, whole_gx if scope.changed else [])
    with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
        staged = f"staging.{table}"
        rows = int(scalar(conn, sql.SQL("select count(*) from {}").format(qualified(staged))))
        for expectation in in_sql:
            success, counts = entity_checks.evaluate(conn, staged, expectation, rows)
            outcomes.append(_outcome_without_gx(expectation, success, counts))
    order = {e["meta"]["rule"]: position for position, e in enumerate(suite)}
    return sorted(outcomes, key=lambda o: order[o.rule])


#: The counts of an expectation over no row.
_NO_ROWS = {"element_count": 0.0, "unexpected_count": 0.0, "unexpected_percent": 0.0}


def _outcome_without_gx(
    expectation: dict[str, Any],
    success: bool,
    counts: dict[str, float],
    scope: str = "all rows (SQL)",
) -> ExpectationOutcome:
    meta = expectation.get("meta", {})
    return ExpectationOutcome(
        type=expectation["type"],
        column=expectation["kwargs"].get("column"),
        rule=str(meta["rule"]),
        row_level=bool(meta.get("row_level", False)),
        success=success,
        counts=counts,
        unexpected_index_query=None,
        scope=scope,
    )


def _record(
    target_dsn: str,
    entity: EntitySpec,
    run_id: str,
    pass_name: str,
    outcomes: list[ExpectationOutcome],
    scope: Scope,
) -> None:
    suite_name = load_suite(entity)["name"]
    failed = [o for o in outcomes if not o.success]
    with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
        conn.execute(
            """
            insert into migration.validation_results
                (run_id, entity, pass, suite, success, evaluated, failed, results,
                 suite_sha256, entity_rows, judged_rows, carried_rows)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (run_id, entity, pass) do update set
                success = excluded.success, evaluated = excluded.evaluated,
                failed = excluded.failed, results = excluded.results,
                suite_sha256 = excluded.suite_sha256, entity_rows = excluded.entity_rows,
                judged_rows = excluded.judged_rows, carried_rows = excluded.carried_rows,
                recorded_at = now()
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
                scope.suite_sha256,
                scope.rows,
                scope.rows if scope.whole else scope.changed,
                scope.carried,
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
) -> ValidationOutcome:
    """Run the suite, quarantine row-level failures, re-run it on what will load.

    Only as far as the rows need it (see :class:`Scope` and the module's docstring). Suites
    are set-based scans: the start (with the entity's rows) and the rows and rows/s at the end
    are logged, not rows as they go.

    Args:
        target_dsn: target database URI.
        entity: the entity spec.
        run_id: the migration run id (quarantine and results are keyed by it).
        limit: how many quarantined rows the entity tolerates (see :class:`QuarantineLimit`).

    Raises:
        ValidationFailed: a suite-level expectation failed, rows still fail after the
            quarantine, or too many rows were quarantined.
    """
    with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
        quarantine.reset(conn, entity)  # a retried validate decides afresh
        scope = decide_scope(conn, entity)
    progress = started(f"validate {entity.name}", scope.rows)
    first = judge(target_dsn, entity, scope, "transformed")
    _record(target_dsn, entity, run_id, "transformed", first, scope)
    suite_level = [o.rule for o in first if not o.success and not o.row_level]
    if suite_level:
        raise ValidationFailed(
            entity.name, f"suite-level expectations failed: {suite_level}; load blocked"
        )
    hold_back_failures(target_dsn, entity, [o for o in first if not o.success and o.row_level])
    verdicts.record(
        target_dsn,
        entity,
        run_id,
        scope.suite_sha256,
        judged="transformed" if scope.whole else "changed",
        local_rules=_local_row_level_rules(entity),
    )
    quarantined, validated_rows = quarantine.rebuild_validated(target_dsn, entity)
    transformed_rows = quarantined + validated_rows
    if limit.exceeded(quarantined, transformed_rows):
        raise ValidationFailed(
            entity.name,
            f"{quarantined} of {transformed_rows} rows quarantined, above the run's limit "
            f"(max of {limit.allowance} rows and {limit.fraction:.1%}); see migration.quarantine",
        )
    second = _second_pass(target_dsn, entity, scope, first, quarantined)
    _record(target_dsn, entity, run_id, "validated", second, scope)
    still_failing = [o.rule for o in second if not o.success]
    if still_failing:
        raise ValidationFailed(
            entity.name, f"rows still fail after quarantine: {still_failing}; load blocked"
        )
    progress.finish(transformed_rows)
    log.info(
        "%s: %d rows validated (%d judged by the suite), %d quarantined",
        entity.name,
        validated_rows,
        scope.rows if scope.whole else scope.changed,
        quarantined,
    )
    return ValidationOutcome(
        transformed_rows=transformed_rows,
        quarantined_rows=quarantined,
        validated_rows=validated_rows,
    )


def _local_row_level_rules(entity: EntitySpec) -> list[str]:
    """Rules whose verdict depends on the row alone: row-level, and row-local (no ``mostly``)."""
    return [
        str(e["meta"]["rule"])
        for e in load_suite(entity)["expectations"]
        if e.get("meta", {}).get("row_level") and not entity_checks.needs_whole_entity(e)
    ]


def _second_pass(
    target_dsn: str,
    entity: EntitySpec,
    scope: Scope,
    first: list[ExpectationOutcome],
    quarantined: int,
) -> list[ExpectationOutcome]:
    """The suite on what will load; the first pass's results when nothing was held back.

    With no row quarantined ``__validated`` holds exactly the rows ``__transformed`` held, so a
    second scan could only repeat the first one's results.
    """
    if quarantined == 0:
        return first
    if not scope.whole:
        with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
            conn.execute(
                sql.SQL(
                    "delete from {changed} as c using {held} as q where q.legacy_id = c.{key}"
                ).format(
                    changed=qualified(entity.staging_table("changed")),
                    held=quarantine.staged_table(entity),
                    key=sql.Identifier(entity.key),
                )
            )
    return judge(target_dsn, entity, scope, "validated")
