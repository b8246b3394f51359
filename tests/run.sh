#!/usr/bin/env bash
# Runs every test of the solution (unit and end-to-end) and ends with one summary line:
#   N passed, N failed
# Exit status: non-zero if the build or any test failed, or if no test ran at all.
# End-to-end tests need root and what packaging/install.sh installs; they fail (never skip)
# with the fix in the message when something is missing.
#   bash tests/run.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~InfraTests]
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if ! command -v dotnet >/dev/null; then
    echo "run.sh: dotnet not found: install the .NET 10 SDK and put dotnet on PATH" >&2
    echo "0 passed, 0 failed"
    exit 1
fi

log=$(mktemp /tmp/sealpoint-test-run.XXXXXX.log)
trap 'rm -f "$log"' EXIT

# The whole solution first: end-to-end tests run the programs (sealpoint, sealpoint-runc-core, sealpoint-hook)
# from their build folders, and 'dotnet test' alone starts a test project as soon as it is built, possibly
# before a program it does not reference (seen on a fresh clone: the hook built after the E2E tests ran).
dotnet build Shim.sln -c Release 2>&1 | tee "$log"
if [[ ${PIPESTATUS[0]} -ne 0 ]]; then
    echo "run.sh: the build failed (see above); fix it and check with: dotnet build Shim.sln -c Release" >&2
    echo "0 passed, 0 failed"
    exit 1
fi

# --blame-hang-timeout: a hung test host is killed and reported instead of eating CI's time limit.
dotnet test Shim.sln -c Release --no-build --blame-hang-timeout 30m "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# VSTest prints one line per test project:
#   Passed!  - Failed:     0, Passed:    10, Skipped:     0, Total:    10, Duration: 14 s - X.dll (net10.0)
passed=0 failed=0 skipped=0 projects=0
while read -r f p s; do
    failed=$((failed + f)); passed=$((passed + p)); skipped=$((skipped + s)); projects=$((projects + 1))
done < <(sed -nE 's/.*(Passed|Failed)! +- +Failed: +([0-9]+), +Passed: +([0-9]+), +Skipped: +([0-9]+),.*/\2 \3 \4/p' "$log")

echo
if [[ $projects -eq 0 ]]; then
    echo "run.sh: no test results were reported (did the build fail? see the output above)" >&2
    [[ $status -ne 0 ]] || status=1
fi
[[ $skipped -eq 0 ]] || echo "run.sh: WARNING: $skipped test(s) were skipped"
if [[ $status -ne 0 && $failed -eq 0 && $projects -gt 0 ]]; then
    echo "run.sh: dotnet test exited with $status although no test failed (a crashed or hung test host? see above)" >&2
fi
echo "$passed passed, $failed failed"
if [[ $failed -gt 0 && $status -eq 0 ]]; then status=1; fi
exit "$status"
