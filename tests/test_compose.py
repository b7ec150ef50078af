"""docker-compose.yaml, validated as a file: no Docker engine runs where the tests run."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = ("airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker")


def test_the_stack_has_every_service() -> None:
    assert set(SERVICES) == {
        "metadata-db", "migration-db", "redis", "webhook-sink", *AIRFLOW,
    }  # fmt: skip
    commands = {name: SERVICES[name]["command"] for name in AIRFLOW if name != "airflow-init"}
    assert commands == {
        "api-server": "api-server",
        "scheduler": "scheduler",
        "dag-processor": "dag-processor",
        "triggerer": "triggerer",
        "worker": "celery worker",
    }


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        if name != "airflow-init":
            assert service["healthcheck"]["test"], name


def test_airflow_services_share_image_mounts_and_celery() -> None:
    for name in AIRFLOW:
        service = SERVICES[name]
        assert service["image"] == "poco-migration-airflow:3.3.2", name
        mounts = {volume.split(":")[0] for volume in service["volumes"]}
        assert {"./dags", "./plugins", "./expectations", "./config"} <= mounts, name
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        assert env["AIRFLOW_CONN_POCO_SOURCE"].endswith("@migration-db:5432/poco_source")
        assert env["AIRFLOW_CONN_MI_TARGET"].endswith("@migration-db:5432/mi_target")
        assert env["AIRFLOW_CONN_MIGRATION_ALERTS"] == "http://webhook-sink:8000/alerts"


def test_dependencies_wait_for_healthy_databases_and_the_init() -> None:
    for name in AIRFLOW[1:]:
        depends = SERVICES[name]["depends_on"]
        assert depends["metadata-db"] == {"condition": "service_healthy"}, name
        assert depends["migration-db"] == {"condition": "service_healthy"}, name
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
    assert SERVICES["worker"]["depends_on"]["api-server"] == {"condition": "service_healthy"}


def test_the_ui_needs_a_login_and_no_secret_is_in_the_file() -> None:
    env = SERVICES["api-server"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    text = (REPO / "docker-compose.yaml").read_text()
    passwords = ("AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_OPERATOR_PASSWORD", "AIRFLOW_SUPPORT_PASSWORD")
    for key in ("POSTGRES_PASSWORD", *passwords, "AIRFLOW_SECRET_KEY"):
        assert re.search(rf"\$\{{{key}(:\?[^}}]*)?\}}", text), key
    assert not re.search(r"://\w+:(?!\$\{)[^@\s]+@", text), "a literal password in a URI"


def test_the_image_is_the_pinned_airflow() -> None:
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    airflow = next(p for p in pins if p.startswith("apache-airflow=="))
    assert f"FROM apache/airflow:{airflow.split('==')[1]}-python3.11" in (REPO / "Dockerfile").read_text()
    assert "CREATE DATABASE mi_target" in (REPO / "docker" / "create-target-db.sql").read_text()
    compile((REPO / "docker" / "webhook_sink.py").read_text(), "webhook_sink.py", "exec")


def test_the_image_installs_the_package_under_airflows_constraints() -> None:
    """Not editable from a bind mount: installed, Airflow kept at its version, the transitive
    dependencies under Airflow's constraints except the packages the project pins itself."""
    dockerfile = (REPO / "Dockerfile").read_text()
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    own = re.search(r'ARG OWN_PINS="([^"]+)"', dockerfile)
    assert own is not None
    for pin in pins:
        name = pin.split("==")[0].split("[")[0].lower()
        if name != "apache-airflow":
            assert re.fullmatch(rf"(?:{own[1]})", name), f"{name} is pinned but left to Airflow's constraints"
    assert "pip install -e" not in dockerfile and "--editable" not in dockerfile
    assert "constraints-3.3.2/constraints-3.11.txt" in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}" "/opt/poco-migration[deploy]"' in dockerfile
    assert "COPY --chown=airflow:root src /opt/poco-migration/src" in dockerfile
