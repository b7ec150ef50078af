#!/usr/bin/env bash
# Sets up everything from nothing but Python 3.11: the virtualenv, the pinned
# stack, and an Airflow home with a SQLite metadata database. Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import poco_migration, airflow, great_expectations, pytest, airflow.providers.celery" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  # pip's output goes to a log, shown only if it fails: a machine's pip configuration can
  # print a warning per package (ignored find-links locations), hundreds of lines.
  log="$AIRFLOW_HOME/pip-install.log"
  echo "installing the pinned stack into .venv (a minute or two; log: $log)"
  { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[test,tools,deploy]"; } \
    > "$log" 2>&1 || { tail -n 40 "$log"; exit 1; }
  touch .venv/.installed
fi
airflow db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
