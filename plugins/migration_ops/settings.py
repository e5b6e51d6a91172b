"""Names and paths shared by every part of the migration: plain constants, no lookups."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = PROJECT_ROOT / "include" / "sql"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

#: Airflow connection ids; set them with AIRFLOW_CONN_LEGACY_DB / AIRFLOW_CONN_SUPABASE_DB.
LEGACY_CONN_ID = "legacy_db"
TARGET_CONN_ID = "supabase_db"

#: Schema on the target that holds extracted and transformed rows between tasks.
STAGING_SCHEMA = "staging"
#: Schema on the target that auditors read: runs, checkpoints, quarantine, reconciliation.
MIGRATION_SCHEMA = "migration"
#: Schema of the legacy Django tables.
LEGACY_SCHEMA = "public"


def local_dir() -> Path:
    """Where the embedded databases and the local Airflow home live (git-ignored)."""
    return Path(os.environ.get("MIGRATION_LOCAL_DIR", PROJECT_ROOT / ".local"))


def reports_dir() -> Path:
    """Where validation and reconciliation reports are written for auditors."""
    return Path(os.environ.get("MIGRATION_REPORTS_DIR", PROJECT_ROOT / "reports"))
