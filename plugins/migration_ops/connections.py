"""Airflow connections (``legacy_db``, ``supabase_db``) turned into libpq URIs for psycopg.

Inside tasks the connection comes from Airflow (env var, secrets backend or metadata DB);
command-line tools outside a task read the ``AIRFLOW_CONN_<ID>`` environment variable,
JSON or URI form, the same way Airflow does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: Connection extras passed through to libpq (anything else in ``extra`` is ignored).
LIBPQ_EXTRAS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "options",
    "target_session_attrs",
)


def connection_to_dsn(conn: Connection) -> str:
    """Build a ``postgresql://`` URI from an Airflow connection.

    A host starting with ``/`` is a Unix-socket directory and travels as the ``host``
    query parameter, which is how libpq spells it in a URI.
    """
    user = quote(conn.login or "", safe="")
    password = f":{quote(conn.password, safe='')}" if conn.password else ""
    auth = f"{user}{password}@" if user else ""
    host = conn.host or ""
    query: dict[str, str] = {
        k: str(v) for k, v in conn.extra_dejson.items() if k in LIBPQ_EXTRAS and v is not None
    }
    if host.startswith("/"):
        query["host"] = host
        if conn.port:
            query["port"] = str(conn.port)
        netloc = auth
    else:
        netloc = f"{auth}{host}" + (f":{conn.port}" if conn.port else "")
    database = quote(conn.schema or "postgres", safe="")
    suffix = f"?{urlencode(query, quote_via=quote, safe='')}" if query else ""
    return f"postgresql://{netloc}/{database}{suffix}"


def task_dsn(conn_id: str) -> str:
    """DSN of an Airflow connection, resolved the way a running task resolves it."""
    from airflow.sdk import BaseHook

    return connection_to_dsn(BaseHook.get_connection(conn_id))


def env_dsn(conn_id: str) -> str:
    """DSN of ``AIRFLOW_CONN_<CONN_ID>`` read from the environment (outside a task).

    Raises:
        KeyError: the variable is not set.
    """
    from airflow.sdk import Connection

    value = os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
    if value.lstrip().startswith("{"):
        return connection_to_dsn(Connection.from_json(value, conn_id=conn_id))
    return connection_to_dsn(Connection.from_uri(value, conn_id=conn_id))
