#!/usr/bin/env bash
# `make bench-tuner-idle` (and part of `make bench`): what a sudden load meets after the local tuner
# (`perfstack-operator local`, as `make run` starts it) had the app idle for a while, against a fixed
# pool, in one run on this machine:
#   1. tuned: the release app with a tuning file and the tuner beside it (make run's settings:
#      --db-max-connections 200, its default 30 s interval and 2..50 pool bounds); idle for
#      TUNER_IDLE_S, then the peak rate (loadtest --rate TUNER_LOAD_RPS, the peak mix) for two
#      minutes, run as two one-minute load tests so each minute has its own p95;
#   2. fixed: the same app without a tuning file (the default pool), the same two minutes of load.
# The app's perfstack_db_pool_* gauges are sampled every second. Reported: the tuned pool at the
# end of the idle time, the time from the start of the load until the tuned pool is at least the
# size the load used at the fixed pool (its largest `in_use`), and each minute's p95/p99/errors
# for both. Figures replace the bench-tuner-idle block of docs/benchmarks.md; raw outputs (load test
# reports, pool samples, the tuner's decisions) stay in bench-out/tuner-idle/.
#
# Knobs (environment): TUNER_IDLE_S (600), TUNER_LOAD_RPS (500), TUNER_LOAD_MINUTES (2).
# Never part of `make test`: figures are recorded, not asserted.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/bench-lib.sh"
cd "$PERFSTACK_ROOT"

IDLE_S=${TUNER_IDLE_S:-600}
LOAD_RPS=${TUNER_LOAD_RPS:-500}
LOAD_MINUTES=${TUNER_LOAD_MINUTES:-2}
OUT=$PERFSTACK_ROOT/bench-out/tuner-idle
DOC=docs/benchmarks.md
rm -rf "$OUT"
mkdir -p "$OUT"

command -v curl >/dev/null || apt_install curl ca-certificates
scripts/services.sh up
source "$RUN_DIR/env"
command -v psql >/dev/null || apt_install postgresql-client-15

log "building perfstack-app and perfstack-operator (release)"
cargo build --release -p perfstack-app --bin perfstack-app -p perfstack-operator --bin perfstack-operator
APP=$PERFSTACK_ROOT/target/release/perfstack-app
OPERATOR=$PERFSTACK_ROOT/target/release/perfstack-operator

TUNER_PID=
SAMPLER_PID=
cleanup() {
  local pid
  for pid in "$SAMPLER_PID" "$TUNER_PID"; do
    [[ -n $pid ]] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SAMPLER_PID= TUNER_PID=
  stop_app
  return 0
}
trap cleanup EXIT

bench_database perfstack_tuner_idle 1000 0
log "seeded in $SEED_SECONDS s"

# sample_pool FILE : every second, "seconds max in_use waiting" from the app's gauges, until killed.
sample_pool() {
  local start=$SECONDS
  while :; do
    curl -fsS --max-time 2 "$APP_URL/metrics" 2>/dev/null | awk -v t=$((SECONDS - start)) '
      $1 == "perfstack_db_pool_max_connections" { m = $2 }
      $1 == "perfstack_db_pool_connections{state=\"in_use\"}" { u = $2 }
      $1 == "perfstack_db_pool_waiting" { w = $2 }
      END { printf "%d %d %d %d\n", t, m, u, w }' >>"$1" || true
    sleep 1
  done
}
# pool_max : the pool's maximum now.
pool_max() {
  curl -fsS --max-time 2 "$APP_URL/metrics" | awk '$1 == "perfstack_db_pool_max_connections" { print $2 + 0 }'
}
# load NAME : LOAD_MINUTES one-minute load tests at LOAD_RPS, each in $OUT/NAME-<minute>/.
load() {
  local minute
  for minute in $(seq 1 "$LOAD_MINUTES"); do
    "$APP" loadtest --base-url "$APP_URL" --scenario peak --rate "$LOAD_RPS" --duration 60 --out "$OUT/$1-$minute" \
      >/dev/null 2>"$OUT/$1-$minute.log" || true
  done
}
# figure NAME MINUTE KEY : one figure of that minute's load test report (n/a without one).
figure() {
  local json value
  json=$(ls "$OUT/$1-$2"/*.json 2>/dev/null | head -1)
  [[ -n $json ]] && value=$(sed -nE "s/.*\"$3\": ([0-9.e+-]+).*/\1/p" "$json" | head -1)
  if [[ -n ${value:-} ]]; then printf '%.1f' "$value"; else echo n/a; fi
}

# --- 1. tuned, after idle time -----------------------------------------------------------------------
start_app tuned REDIS_URL="$REDIS_URL" TUNING_FILE="$OUT/tuning.yaml"
"$OPERATOR" local --app-url "$APP_URL" --tuning-file "$OUT/tuning.yaml" --db-max-connections 200 \
  >"$OUT/tuner.log" 2>&1 &
TUNER_PID=$!
POOL_START=$(pool_max)
log "tuned: pool max $POOL_START at start; idle for $IDLE_S s"
sample_pool "$OUT/pool-tuned.txt" &
SAMPLER_PID=$!
sleep "$IDLE_S"
POOL_IDLE=$(pool_max)
LOAD_AT=$(tail -n1 "$OUT/pool-tuned.txt" | cut -d' ' -f1)
log "tuned: pool max $POOL_IDLE after $IDLE_S idle seconds; $LOAD_RPS rps for $LOAD_MINUTES min"
load tuned
cleanup

# --- 2. fixed pool ----------------------------------------------------------------------------------
start_app fixed REDIS_URL="$REDIS_URL"
POOL_FIXED=$(pool_max)
sample_pool "$OUT/pool-fixed.txt" &
SAMPLER_PID=$!
log "fixed: pool max $POOL_FIXED; $LOAD_RPS rps for $LOAD_MINUTES min"
load fixed
cleanup
trap - EXIT

# The size the load needs: the most connections it held at the fixed pool. The tuned pool is back
# when its maximum first reaches that (or the fixed pool's maximum, whichever is smaller).
NEED=$(awk '$3 > n { n = $3 } END { print n + 0 }' "$OUT/pool-fixed.txt")
((NEED <= POOL_FIXED)) || NEED=$POOL_FIXED
BACK=$(awk -v at="$LOAD_AT" -v need="$NEED" '$1 >= at && $2 >= need { print $1 - at; exit }' "$OUT/pool-tuned.txt")
POOL_END=$(awk -v at="$LOAD_AT" '$1 >= at { m = $2 } END { print m + 0 }' "$OUT/pool-tuned.txt")
WAIT_MAX=$(awk -v at="$LOAD_AT" '$1 >= at && $4 > w { w = $4 } END { print w + 0 }' "$OUT/pool-tuned.txt")

{
  echo "<!-- bench-tuner-idle:begin (generated by scripts/bench-tuner-idle.sh; edit the prose outside this block) -->"
  echo "$(bench_measured app Cargo.lock)."
  echo "The release app on the local services (L1 + Redis L2), 10,000 users, 1,000 projects, 100,000 tasks;"
  echo "load: \`loadtest --rate $LOAD_RPS\` (the peak mix, open model) as $LOAD_MINUTES one-minute runs, on the same cores."
  echo "Tuned: \`perfstack-operator local --db-max-connections 200\` (make run's tuner) beside the app, idle for $IDLE_S s"
  echo "first; fixed: no tuning file, the default pool of $POOL_FIXED."
  echo
  echo "Tuned pool: $POOL_START at start, $POOL_IDLE after $IDLE_S idle seconds, $POOL_END at the end of the load;"
  echo "most requests waiting for a connection at one sample: $WAIT_MAX. The load used at most $NEED connections of"
  echo "the fixed pool; the tuned pool reached $NEED ${BACK:+$BACK s after the load started}${BACK:-at no point of the load}."
  echo
  echo "| minute of load | tuned p95 ms | tuned p99 ms | tuned errors % | fixed p95 ms | fixed p99 ms | fixed errors % |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for minute in $(seq 1 "$LOAD_MINUTES"); do
    echo "| $minute | $(figure tuned "$minute" p95) | $(figure tuned "$minute" p99) | $(figure tuned "$minute" errorRatePct) |" \
      "$(figure fixed "$minute" p95) | $(figure fixed "$minute" p99) | $(figure fixed "$minute" errorRatePct) |"
  done
  echo "<!-- bench-tuner-idle:end -->"
} >"$OUT/block.md"
replace_generated_block "$DOC" bench-tuner-idle "$OUT/block.md"
log "figures written to $DOC"
cat "$OUT/block.md"
