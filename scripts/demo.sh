#!/usr/bin/env bash
# The main job: set up, seed the SQLite POCO and Xiaomi databases, and rehearse
# the whole plan (October to the 31 December shutdown), printing the report.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh"
poco-migration seed --scale "${POCO_SCALE:-1000}" --seed "${POCO_SEED:-42}"
poco-migration rehearse "$@"
