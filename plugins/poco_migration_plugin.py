"""Registers the migration dashboard with Airflow: its FastAPI app on the api-server,
and a "POCO migration" page in the UI's navigation that shows it."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from poco_migration.dashboard import plugin_spec

_SPEC = plugin_spec()


class PocoMigrationPlugin(AirflowPlugin):
    name = "poco_migration"
    fastapi_apps = _SPEC["fastapi_apps"]
    external_views = _SPEC["external_views"]
