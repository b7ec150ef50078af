#!/usr/bin/env bash
# Set up, lint (ruff, with Airflow's AIR rules) and run the whole test suite.
# Database tests run on SQLite and on PostgreSQL (POCO_TEST_PG_URL, default the
# local server); with CI=true an unreachable PostgreSQL fails the run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
ruff check .
ruff format --check plugins dags tests
"$ROOT/scripts/audit.sh"
pytest "$@"
