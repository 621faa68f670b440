#!/usr/bin/env bash
# Tests of the Python client (packages/python-client) against the REAL sidecar process, which the
# tests start themselves (apps/sidecar/src/main.ts on the workspace's Node; run `npm ci` first).
#
#   tools/python/test-client.sh                      client suite: every API call read back, failure
#                                                     recording, sidecar down/up, unix socket, fork,
#                                                     packaging (.venv/client: grpcio, protobuf, pytest)
#   tools/python/test-client.sh --frameworks         adapter suite: real Ultralytics, Lightning, Hugging
#                                                     Face and a plain torch loop on CPU, offline
#                                                     (.venv/frameworks, ~6 GB, first install ~2-5 min)
#   tools/python/test-client.sh --all                both suites
#   tools/python/test-client.sh --bench [--only-restarts] [--pin] [--append docs/benchmarks.md]
#                                                     on_batch_end cost and throughput; with the
#                                                     sidecar restarting 3 times in a 60 s run (--pin:
#                                                     training thread on a CPU of its own; prints a
#                                                     SUMMARY line)
#   tools/python/test-client.sh --check-generated    regenerate the Python stubs; fail if they changed
#
# Other arguments go to pytest (e.g. -k fork -x).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pkg="$root/packages/python-client"
mode=client
case "${1:-}" in
  --frameworks) mode=frameworks; shift ;;
  --all) mode=all; shift ;;
  --bench) mode=bench; shift ;;
  --check-generated) mode=check; shift ;;
esac
export PATH="$root/node_modules/.bin:$PATH"
cd "$pkg"
case "$mode" in
  client)
    python=$("$root/tools/python/venv.sh" client)
    exec "$python" -m pytest tests --ignore=tests/frameworks "$@" ;;
  frameworks)
    python=$("$root/tools/python/venv.sh" frameworks)
    exec "$python" -m pytest tests/frameworks "$@" ;;
  all)
    python=$("$root/tools/python/venv.sh" client)
    "$python" -m pytest tests --ignore=tests/frameworks "$@"
    python=$("$root/tools/python/venv.sh" frameworks)
    exec "$python" -m pytest tests/frameworks "$@" ;;
  bench)
    python=$("$root/tools/python/venv.sh" client)
    cd "$root"
    exec "$python" "$pkg/bench/bench_on_batch_end.py" "$@" ;;
  check)
    "$root/tools/python/generate.sh"
    cd "$root"
    if ! git diff --exit-code --stat -- packages/python-client/src/training_callbacks/_proto \
      || [ -n "$(git status --porcelain -- packages/python-client/src/training_callbacks/_proto)" ]; then
      echo "Generated Python code is stale: run 'npm run generate' and commit the result." >&2
      exit 1
    fi
    echo "Generated Python code is up to date." ;;
esac
