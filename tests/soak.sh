#!/usr/bin/env bash
# Soak: run CI (the README's test command, through .ci/run) N times, each on a fresh clone of HEAD; print how many
# passed. A flaky test shows up here, not in one lucky run. Usage: tests/soak.sh [N=5]
set -uo pipefail
runs=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
passed=0
for i in $(seq 1 "$runs"); do
    clone=$(mktemp -d /tmp/relcheck-soak.XXXXXX)
    git clone -q "$repo" "$clone"
    started=$(date +%s)
    if (cd "$clone" && CI=true bash .ci/run) >"$clone.log" 2>&1; then
        passed=$((passed + 1)) status=passed
    else
        status="FAILED (log: $clone.log)"
    fi
    echo "soak run $i/$runs: $status in $(($(date +%s) - started)) s"
    [ "$status" = passed ] && rm -rf "$clone" "$clone.log"
done
echo "soak: $passed of $runs fresh-clone runs passed"
[ "$passed" -eq "$runs" ]
