"""Row-local verdicts carried over: a held-back row that comes back unchanged is not judged again.

Every night the sync reads the open quarantine again (a row held back because its order was
missing may load once the order arrives). Most of those rows come back exactly as they were,
and a row-local expectation's verdict is a function of the row's transformed content and the
suite: Great Expectations would decide the same again. So the validate step records, for each
row the suite failed, a 64-bit hash of its mapped columns (the columns the load writes and
compares) and the suite's sha256 in ``migration.row_verdicts``; a later run re-stages those
decisions for a row whose hash and suite are unchanged instead of handing it to GX. A row
whose content changed (its order now resolves, its value was fixed) has another hash and is
judged again. Only the suite's own row-level rules are carried: what the object copy decides
depends on the media store, not on the row.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops import load, quarantine
from migration_ops.db import connect, qualified, read_sql


def row_hash(conn: psycopg.Connection[Any], entity: EntitySpec, alias: str) -> sql.Composed:
    """``hash_record_extended(row(<alias>.<mapped columns>), 0)``, over the staged columns."""
    columns = load.loadable_columns(conn, entity, "transformed")
    return sql.SQL("hash_record_extended(row({}), 0)").format(
        sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns)
    )


def carry_over(conn: psycopg.Connection[Any], entity: EntitySpec, suite_sha256: str) -> int:
    """Stage the recorded verdicts of unchanged held-back rows; drop them from ``__changed``.

    In the validate step's transaction, right after its decisions were reset.

    Returns:
        how many rows kept their verdict.
    """
    parts = _parts(conn, entity, "changed", "c")
    params = {"entity": entity.name, "suite_sha256": suite_sha256}
    conn.execute(sql.SQL(read_sql("validate/verdicts_carry.sql")).format(**parts), params)
    dropped = sql.SQL(read_sql("validate/verdicts_drop_carried.sql")).format(**parts)
    return conn.execute(dropped).rowcount


def record(
    target_dsn: str,
    entity: EntitySpec,
    run_id: str,
    suite_sha256: str,
    *,
    judged: str,
    local_rules: list[str],
) -> None:
    """Record the suite's verdicts of the rows in ``staging.<entity>__<judged>`` for later runs.

    Called after the first pass staged its row-level failures and before anything else stages
    a decision (the object copy comes later). ``local_rules``: the suite's row-level rules
    whose verdict depends on the row alone.
    """
    with connect(target_dsn, application_name=f"migration:validate:{entity.name}") as conn:
        parts = _parts(conn, entity, judged, "t")
        params = {
            "entity": entity.name,
            "suite_sha256": suite_sha256,
            "run_id": run_id,
            "local_rules": local_rules,
        }
        conn.execute(sql.SQL(read_sql("validate/verdicts_forget.sql")).format(**parts), params)
        conn.execute(sql.SQL(read_sql("validate/verdicts_record.sql")).format(**parts), params)


def _parts(
    conn: psycopg.Connection[Any], entity: EntitySpec, rows: str, alias: str
) -> dict[str, sql.Composable]:
    table = qualified(entity.staging_table(rows))
    return {
        "changed": table,
        "judged": table,
        "decisions": quarantine.staged_table(entity),
        "key": sql.Identifier(entity.key),
        "row_hash": row_hash(conn, entity, alias),
    }
