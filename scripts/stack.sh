#!/usr/bin/env bash
# docker-compose.yaml's Airflow on this machine, as local processes, on its real engine: the
# CeleryExecutor on Redis (127.0.0.1:6379, db 5), two Celery workers, the scheduler, the
# dag-processor, the triggerer and the api-server on http://127.0.0.1:8080, PostgreSQL for the
# metadata and for poco_source / mi_target (databases poco_stack_*, seeded on the first start).
# Log in as admin, operator or support (passwords in var/stack/passwords.json).
# Ctrl-C, SIGTERM or `scripts/stack.sh --stop` stops every program it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh"
exec python -m poco_migration_tools.stack "$@"
