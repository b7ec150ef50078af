#!/usr/bin/env bash
# Dependency audit: pip-audit of the installed stack against PyPI's vulnerability data.
# A known vulnerability fails the run. Where no vulnerability service is reachable (this
# machine reaches PyPI only through a mirror that serves no vulnerability data, and OSV
# not at all) the audit cannot be done: it says so loudly and does not fail the run.
# Findings and their triage: README, "Security".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
out="$(pip-audit --skip-editable --progress-spinner off 2>&1)"
unaudited="$(grep -c "could not be audited" <<<"$out")"
if grep -Eq "^Found [0-9]+ known vulnerabilit" <<<"$out"; then
    grep -v "could not be audited" <<<"$out"
    echo "pip-audit: known vulnerabilities (triage them in README, Security)" >&2
    exit 1
elif [ "$unaudited" -gt 0 ]; then
    echo "pip-audit: NOT AUDITED - $unaudited packages could not be checked: no vulnerability service is" \
        "reachable from here (this PyPI mirror serves no vulnerability data, OSV is unreachable);" \
        "run scripts/audit.sh where one is" >&2
else
    echo "pip-audit: no known vulnerabilities"
fi
