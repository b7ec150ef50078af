#!/usr/bin/env bash
# The Airflow web UI on the demo data: api-server, scheduler, dag-processor and
# triggerer (airflow standalone) on http://127.0.0.1:8080, sized for a small machine
# (one api-server worker, two task slots). Log in as "admin", "operator" or "support" (a
# support agent: reads and looks people up); the generated passwords are printed below and
# kept in $AIRFLOW_HOME. Ctrl-C (or SIGTERM) stops every process.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh"
[ -f "$ROOT/var/poco_source.db" ] || poco-migration seed
export AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,operator:user,support:viewer"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-2}"
# airflow standalone leaves its scheduler behind when it is stopped: it runs in a process
# group of its own, and the whole group is stopped with it.
setsid airflow standalone &
standalone=$!
trap 'kill -TERM -- "-$standalone" 2>/dev/null || true; wait "$standalone" || true' INT TERM EXIT
wait "$standalone"
