"""The migration dashboard: an Airflow 3 plugin (FastAPI app + nav entry) on the api-server.

It reads the ``migration`` schema only (runs, reconciliation, quarantine ids and rules,
suite results, backups) and shows ids, counts and rule names, never row values. Every route
checks Airflow's own token: a plugin app is mounted without the core API's authentication.
"""
