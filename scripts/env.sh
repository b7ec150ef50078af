# Sourced by the other scripts: the project's Airflow home, DAGs, plugins and the
# demo connections. Anything already set in the environment wins, so the same
# scripts run against PostgreSQL by exporting AIRFLOW_CONN_POCO_SOURCE and
# AIRFLOW_CONN_MI_TARGET first.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE="${AIRFLOW__CORE__UNIT_TEST_MODE:-False}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW_CONN_POCO_SOURCE="${AIRFLOW_CONN_POCO_SOURCE:-sqlite:///$ROOT/var/poco_source.db}"
export AIRFLOW_CONN_MI_TARGET="${AIRFLOW_CONN_MI_TARGET:-sqlite:///$ROOT/var/mi_target.db}"
export POCO_MIGRATION_DATA_DOCS="${POCO_MIGRATION_DATA_DOCS:-$ROOT/var/data_docs}"
export GX_ANALYTICS_ENABLED=false
export PATH="$ROOT/.venv/bin:$PATH"
mkdir -p "$AIRFLOW_HOME"
