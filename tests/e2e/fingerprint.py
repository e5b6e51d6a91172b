"""Row fingerprints used to prove reruns leave tables identical."""

from __future__ import annotations

from psycopg import sql

from migration_ops.db import connect, qualified


def table_fingerprint(dsn: str, table: str) -> tuple[int, str]:
    """(row count, md5 over every full row in a stable order): ids and timestamps included."""
    with connect(dsn) as conn:
        row = conn.execute(
            sql.SQL(
                "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {} as t"
            ).format(qualified(table))
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def public_tables(dsn: str) -> list[str]:
    """Every table of the target's public schema."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "select 'public.' || tablename from pg_tables where schemaname = 'public' order by 1"
        ).fetchall()
    return [r[0] for r in rows]


def fingerprints(dsn: str) -> dict[str, tuple[int, str]]:
    """Fingerprint of every public table."""
    return {table: table_fingerprint(dsn, table) for table in public_tables(dsn)}
