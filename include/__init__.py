"""Project code importable without Airflow: entity specs, SQL, pure rules, the sandbox."""
