#!/usr/bin/env bash
# Set up, lint (ruff, with Airflow's AIR rules), check types (mypy over src/ and dags/)
# and run the whole test suite on two workers (pytest-xdist; the whole-plan rehearsals,
# the fault trials and the stack test spread over both cores).
# Database tests run on SQLite and on PostgreSQL (POCO_TEST_PG_URL, default the
# local server); with CI=true an unreachable PostgreSQL fails the run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
ruff check .
ruff format --check src plugins dags tests scripts
mypy
"$ROOT/scripts/audit.sh"
pytest -n "${POCO_TEST_WORKERS:-2}" --dist worksteal "$@"
