#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one run on this machine (release profile, as
# the Lambda functions ship). Run outside CI; CI only compiles the benches.
#   bash scripts/bench.sh            # everything
#   bash scripts/bench.sh core       # one part: core, write, relay, lambda, pipeline, scale
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
if run scale; then
  echo "==> cost per event from 100 to 100,000 events: demo on embedded dynoxide and in memory"
  cargo build --release -q --bin outbox-local
  scratch="$(mktemp -d)"
  for store in dynoxide memory; do
    for stories in 8 80 800 8000; do
      args=(--data "$scratch/demo-$stories.db")
      [[ "$store" == memory ]] && args=(--store memory)
      /usr/bin/time -f "%e %U %M" -o "$scratch/time" \
        target/release/outbox-local demo --stories "$stories" "${args[@]}" >"$scratch/out" 2>"$scratch/err"
      grep -q "invariants *all held" "$scratch/out" || { cat "$scratch/out" "$scratch/err"; exit 1; }
      events=$(awk '/events committed/ {print $3}' "$scratch/out")
      read -r wall user rss <"$scratch/time"
      awk -v s="$store" -v n="$stories" -v e="$events" -v w="$wall" -v u="$user" -v r="$rss" \
        'BEGIN { printf "%-9s %5d stories %7d events  wall %7.1f s  user CPU %.3f ms/event  RSS %4.0f MB\n", s, n, e, w, 1000 * u / e, r / 1024 }'
      rm -rf "$scratch"/demo-*
    done
  done
  rm -rf "$scratch"
  echo "==> serve, one client, from 100 to 100,000 events"
  for orders in 20 200 2000 20000; do
    LOAD_CLIENTS=1 LOAD_ORDERS=$orders cargo bench -p outbox-tests --bench serve_load
  done
fi
