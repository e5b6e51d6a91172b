"""Registers the migration dashboard with Airflow (found in the plugins folder).

``fastapi_apps`` mounts the app on the api-server at ``/migration``; ``external_views`` adds
a "Migration" entry to the UI's navigation that shows it inside Airflow (relative href).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from migration_ops.ui.app import app


class MigrationDashboardPlugin(AirflowPlugin):
    """The migration dashboard and its navigation entry."""

    name = "migration_dashboard"
    fastapi_apps = [{"app": app, "url_prefix": "/migration", "name": "Migration dashboard"}]
    external_views = [
        {
            "name": "Migration",
            "href": "migration/",
            "destination": "nav",
            "url_route": "migration",
        }
    ]
