#!/usr/bin/env bash
# CI under load: runs `.ci/run` on a fresh clone of this checkout's HEAD, N times
# in a row (default 3), while two other processes keep both cores busy — as CI
# runs on a machine where other work may be running. One line per run; exits 1
# if any run failed. Each run's full log is kept next to its clone.
#
#   bash scripts/ci-under-load.sh [runs]
set -euo pipefail
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
runs=${1:-3}
commit=$(git -C "$top" rev-parse --short HEAD)

burn() { while :; do :; done; }
burn &
first=$!
burn &
second=$!
trap 'kill "$first" "$second" 2>/dev/null || true' EXIT

echo "ci-under-load: $runs runs of .ci/run on a fresh clone of $commit, two busy loops on $(nproc) cores"
failed=0
for run in $(seq 1 "$runs"); do
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tidemark-ci-load-XXXXXX")
  # Readable by all: as root, the embedded server runs as postgres and must reach the binaries.
  chmod 755 "$dir"
  git clone -q "$top" "$dir/repo"
  started=$(date +%s)
  if (cd "$dir/repo" && bash .ci/run >"$dir/ci.log" 2>&1); then result=passed; else result=FAILED; failed=1; fi
  summary=$(grep -E '^(tests|chaos)' "$dir/ci.log" | tr '\n' ';' || true)
  echo "run $run: $result in $(($(date +%s) - started)) s; ${summary} log: $dir/ci.log"
  [ "$result" = passed ] && rm -rf "$dir/repo"
done
exit "$failed"
