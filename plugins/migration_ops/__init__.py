"""Airflow-side machinery of the legacy → Supabase migration.

The package name is unique on purpose: Airflow puts ``plugins/`` on ``sys.path``, so a
generic name such as ``operators`` would shadow other modules.
"""
