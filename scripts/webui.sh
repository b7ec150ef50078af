#!/usr/bin/env bash
# The Airflow web UI on the demo data: api-server, scheduler, dag-processor and
# triggerer (airflow standalone) on http://localhost:8080. Log in as "admin"; the
# generated password is printed below and kept in $AIRFLOW_HOME.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh"
[ -f "$ROOT/var/poco_source.db" ] || poco-migration seed
export AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
exec airflow standalone
