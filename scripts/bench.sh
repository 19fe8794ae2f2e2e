#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one run on this machine (release profile, as
# the Lambda functions ship). Run outside CI; CI only compiles the benches.
#   bash scripts/bench.sh            # everything
#   bash scripts/bench.sh core       # one part: core, write, relay, lambda, pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
run() { [[ "$part" == all || "$part" == "$1" ]]; }

if run core; then
  echo "==> the pure core (criterion)"
  cargo bench -p outbox-application --bench core -- --noplot --warm-up-time 1 --measurement-time 3
fi
if run write; then
  echo "==> the write path"
  cargo bench -p outbox-reference --bench write_path
fi
if run relay; then
  echo "==> the relay at the API minimum (1,000-record batches)"
  RELAY_BENCH_QUICK=1 cargo bench -p outbox-reference --bench relay
fi
if run lambda; then
  echo "==> the Lambda functions"
  cargo bench -p outbox-reference --bench lambda
fi
if run pipeline; then
  echo "==> serve under load, the whole pipeline, and replay"
  cargo bench -p outbox-tests --bench serve_load
fi
