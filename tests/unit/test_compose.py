"""docker-compose.yaml: the services, settings and secrets docs/deployment.md promises.

Parsed here (no Docker engine on CI machines); ``docker compose config`` also validates it
where a docker client with the compose plugin exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_services_are_those_of_a_celery_deployment(compose) -> None:
    services = compose["services"]
    assert set(services) == {
        *AIRFLOW_SERVICES,
        "airflow-init",
        "airflow-cli",
        "metadata",
        "redis",
        "legacy-db",
        "target-db",
        "storage",
        "legacy-sandbox",
    }
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
        assert "healthcheck" in services[name], name
        assert services[name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }
    for name in ("metadata", "redis", "legacy-db", "target-db"):
        assert "healthcheck" in services[name], name
    assert services["target-db"]["image"].startswith("pgvector/pgvector:")
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"] == {
        "condition": "service_healthy"
    }


def test_airflow_settings(compose) -> None:
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False", "real login"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:")
    for secret in ("FERNET_KEY", "JWT_SECRET", "SECRET_KEY"):
        value = next(v for k, v in env.items() if k.endswith(secret))
        assert re.fullmatch(r"\$\{[A-Z_]+:\?.+\}", value), f"{secret} must come from .env"
    mounts = {m.split(":")[1] for m in compose["services"]["airflow-worker"]["volumes"]}
    assert {
        "/opt/airflow/dags",
        "/opt/airflow/plugins",
        "/opt/airflow/include",
        "/opt/airflow/expectations",
        "/opt/airflow/reports",
        "/opt/airflow/backups",
    } <= mounts
    assert compose["services"]["airflow-worker"]["env_file"] == ".env"
    assert compose["services"]["airflow-worker"]["build"] == "."


def test_every_variable_is_in_env_example(compose) -> None:
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", COMPOSE.read_text(encoding="utf-8")))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert used - defined == set()
    assert {"AIRFLOW_CONN_LEGACY_DB", "AIRFLOW_CONN_SUPABASE_DB"} <= defined
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def env_example() -> dict[str, str]:
    """``.env.example`` as docker compose reads it (``NAME=value`` lines)."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.M))


def test_the_storage_stand_in_serves_what_the_storage_connection_names(compose) -> None:
    storage = compose["services"]["storage"]
    assert storage["entrypoint"] == ["python", "-m", "migration_ops.local_storage"]
    args = storage["command"]
    assert args[args.index("--host") + 1] == "0.0.0.0"  # other containers reach it
    assert "healthcheck" in storage
    assert storage["environment"]["STORAGE_SERVICE_KEY"] == (
        "${STORAGE_SERVICE_KEY:?set STORAGE_SERVICE_KEY in .env}"
    )
    example = env_example()
    conn = json.loads(example["AIRFLOW_CONN_SUPABASE_STORAGE"])
    assert conn["host"] == f"http://storage:{args[args.index('--port') + 1]}"
    assert conn["password"] == example["STORAGE_SERVICE_KEY"]
    # the media store the object copy reads is mounted in every worker at media_root
    mounts = dict(m.rsplit(":", 1) for m in compose["services"]["airflow-worker"]["volumes"])
    assert mounts["${MIGRATION_MEDIA_DIR:-./media}"] == conn["extra"]["media_root"]
    assert conn["extra"]["expected_objects"] == "/opt/airflow/media/expected-objects.txt"


def test_the_sandbox_loads_into_legacy_db_on_demand(compose) -> None:
    sandbox = compose["services"]["legacy-sandbox"]
    assert sandbox["profiles"] == ["tools"], "a one-shot tool, not started by `up`"
    assert sandbox["depends_on"] == {"legacy-db": {"condition": "service_healthy"}}
    script = sandbox["command"][1]
    assert (
        'python -m include.sandbox --dsn "$${AIRFLOW_CONN_LEGACY_DB}" '
        '--scale "$${SANDBOX_SCALE:-0.02}" --media-dir /opt/airflow/media --if-missing'
    ) in script.splitlines()
    assert 'Path("/opt/airflow/media/expected-objects.txt")' in script
    example = env_example()
    assert example["AIRFLOW_CONN_LEGACY_DB"].endswith("@legacy-db:5432/legacy")
    assert float(example["SANDBOX_SCALE"]) == 0.02


def test_env_example_chooses_the_offline_embedding_provider() -> None:
    from migration_ops.ai.providers import HashingProvider, get_provider

    name = env_example()["MIGRATION_EMBEDDING_PROVIDER"]
    assert name == "hashing"
    assert isinstance(get_provider(name), HashingProvider)


def test_image_adds_the_pinned_requirements_to_the_official_one() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned is not None
    assert f"FROM apache/airflow:{pinned.group(1)}-python3.11" in dockerfile
    assert "-r /opt/airflow/project-requirements/requirements.txt" in dockerfile
    assert "-c /opt/airflow/project-requirements/constraints.txt" in dockerfile


def test_docker_compose_config_accepts_it(tmp_path) -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode
    ):
        pytest.skip("no docker client with the compose plugin on this machine")
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--env-file", str(env), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
