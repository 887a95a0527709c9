#!/usr/bin/env bash
# Runs the benchmark suite on this machine (loopback only) and prints a Markdown report; the same
# report is written to bench/out/. Needs Debian's wrk, nginx and redis-server.
#   BENCH_ROUNDS=3 BENCH_DURATION=5s BENCH_SESSIONS=1000000 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")"
for tool in wrk nginx redis-server; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] || {
    echo "bench: $tool not found (apt-get install -y wrk nginx-light redis-server)" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"
[[ -d node_modules ]] || npm ci --no-audit --no-fund
(cd .. && { [[ -d node_modules ]] || npm ci; } && npm run -s build)
exec node run.mjs
