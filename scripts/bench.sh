#!/usr/bin/env bash
# `make bench`: the API (release build) on the local PostgreSQL/Redis, measured with wrk at a fixed
# concurrency and with `perfstack-app loadtest`; the figures replace the generated block of
# docs/benchmarks.md (machine, date and commit included). Raw outputs stay in bench-out/.
#
# Knobs (environment): BENCH_DURATION (wrk run, default 15s), BENCH_CONNECTIONS (32),
# BENCH_THREADS (2), EXPORT_TASKS (1000000), LOADTEST_SCALE (0.05: peak for 30 s);
# the capacity search (`loadtest --find-capacity`, the same mix at rising open-model rates until a
# step breaks the SLO): CAPACITY_START (500 rps), CAPACITY_FACTOR (1.25), CAPACITY_MAX (4000 rps),
# CAPACITY_STEP_S (15 s per step), CAPACITY_REFINE (2 steps bisecting the gap after the first break).
# Never part of `make test`: figures are recorded, not asserted.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/bench-lib.sh"
cd "$PERFSTACK_ROOT"

DURATION=${BENCH_DURATION:-15s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
EXPORT_TASKS=${EXPORT_TASKS:-1000000}
LOADTEST_SCALE=${LOADTEST_SCALE:-0.05}
CAPACITY=(--start-rate "${CAPACITY_START:-500}" --step-factor "${CAPACITY_FACTOR:-1.25}"
  --max-rate "${CAPACITY_MAX:-4000}" --step-duration "${CAPACITY_STEP_S:-15}"
  --refine-steps "${CAPACITY_REFINE:-2}")
OUT=$PERFSTACK_ROOT/bench-out
DOC=docs/benchmarks.md
mkdir -p "$OUT"

command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl ca-certificates
scripts/services.sh up
source "$RUN_DIR/env"
command -v psql >/dev/null || apt_install postgresql-client-15

log "building perfstack-app (release)"
cargo build --release -p perfstack-app --bin perfstack-app
APP=$PERFSTACK_ROOT/target/release/perfstack-app

# --- a database of its own, seeded with set-based SQL -------------------------------------------
bench_database perfstack_bench 1000 "$EXPORT_TASKS"
seed_seconds=$SEED_SECONDS
MIN_TASK=$(bench_sql "SELECT min(id) FROM tasks")
MIN_PROJECT=$(bench_sql "SELECT min(id) FROM projects")
MIN_USER=$(bench_sql "SELECT min(id) FROM users")
EXPORT_PROJECT=$(bench_sql "SELECT max(id) FROM projects")
export MIN_TASK MIN_PROJECT MIN_USER

# --- the app under test -------------------------------------------------------------------------
trap stop_app EXIT
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$APP_PID/status"; }
# sample_rss FILE: writes the largest VmRSS (KiB) seen until killed, every 100 ms.
sample_rss() {
  local max=0 v
  while kill -0 "$APP_PID" 2>/dev/null; do
    v=$(rss_kib 2>/dev/null || echo 0)
    ((v > max)) && max=$v && echo "$max" >"$1"
    sleep 0.1
  done
}

# --- wrk ---------------------------------------------------------------------------------------
# The done() hook every script shares: one parseable line (latencies in microseconds).
REPORT_LUA='
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50=%d p99=%d requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout))
end'
lua() { printf '%s\n%s\n' "$2" "$REPORT_LUA" >"$OUT/$1.lua"; echo "$OUT/$1.lua"; }
# The same 1,000 task ids for every GET-by-id case, so L1, L2 and uncached see one access pattern.
GET_LUA=$(lua get 'local base = tonumber(os.getenv("MIN_TASK"))
request = function() return wrk.format("GET", "/api/v1/tasks/" .. (base + math.random(0, 999))) end')
LIST_LUA=$(lua list 'request = function()
  return wrk.format("GET", "/api/v1/tasks?page=" .. math.random(1, 50) .. "&limit=20") end')
PROJECT_LIST_LUA=$(lua list-project 'local p = tonumber(os.getenv("MIN_PROJECT"))
request = function()
  return wrk.format("GET", "/api/v1/projects/" .. (p + math.random(0, 999)) .. "/tasks?limit=20") end')
KEYSET_LUA=$(lua list-keyset 'request = function() return wrk.format("GET", "/api/v1/tasks?cursor=&limit=20") end')
CREATE_LUA=$(lua create 'local p, u = tonumber(os.getenv("MIN_PROJECT")), tonumber(os.getenv("MIN_USER"))
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    [[{"projectId":%d,"title":"bench task %d","priority":%d,"assigneeId":%d,"dueDate":"2027-06-01"}]],
    p + math.random(0, 999), n, math.random(0, 4), u + math.random(0, 9999))
  return wrk.format("POST", "/api/v1/tasks", {["Content-Type"] = "application/json"}, body)
end')

declare -A RESULT HITS
# bench CASE SCRIPT: a warm-up run (also fills caches), then the measured one; for GET-by-id cases
# the cache hits per level during the measured run prove where the answers came from.
bench() {
  local case=$1 script=$2 l1 l2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$script" "$APP_URL" >/dev/null
  l1=$(cache_hits l1)
  l2=$(cache_hits l2)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s -s "$script" "$APP_URL" >"$OUT/$case.txt"
  RESULT[$case]=$(grep '^RESULT' "$OUT/$case.txt" | cut -d' ' -f2-)
  HITS[$case]="L1 hits $(($(cache_hits l1) - l1)), L2 hits $(($(cache_hits l2) - l2))"
  log "$case: ${RESULT[$case]} (${HITS[$case]})"
}
field() { sed -E "s/.*$2=([0-9.]+).*/\1/" <<<"${RESULT[$1]}"; }

# The cache knobs of this build decide which GET-by-id variants can be measured.
HAS_CACHE=0
"$APP" serve --help | grep -q -- '--cache-l1-max-bytes' && HAS_CACHE=1

# 1) default configuration: L1 + L2 (when built in): GET by id from L1, list, create, RSS, export.
start_app default DB_POOL_MAX=20 REDIS_URL="$REDIS_URL"
sleep 1
RSS_IDLE=$(rss_kib)
sample_rss "$OUT/rss-load" &
SAMPLER=$!
if ((HAS_CACHE)); then bench get-l1 "$GET_LUA"; else bench get-uncached "$GET_LUA"; fi
bench list "$LIST_LUA"
bench list-project "$PROJECT_LIST_LUA"
bench list-keyset "$KEYSET_LUA"
bench create "$CREATE_LUA"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
RSS_LOAD=$(cat "$OUT/rss-load" 2>/dev/null || echo 0)

log "exporting $EXPORT_TASKS tasks"
echo 0 >"$OUT/rss-export"
sample_rss "$OUT/rss-export" &
SAMPLER=$!
EXPORT=$(curl -sS -o /dev/null --max-time 900 -w '%{http_code} %{time_total} %{size_download}' \
  "$APP_URL/api/v1/projects/$EXPORT_PROJECT/tasks/export")
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
read -r EXPORT_STATUS EXPORT_SECONDS EXPORT_BYTES <<<"$EXPORT"
RSS_EXPORT=$(cat "$OUT/rss-export")
log "export: HTTP $EXPORT_STATUS in ${EXPORT_SECONDS}s, $EXPORT_BYTES bytes"

log "loadtest peak at scale $LOADTEST_SCALE"
LOADTEST_STATUS=passed
"$APP" loadtest --base-url "$APP_URL" --scenario peak --scale "$LOADTEST_SCALE" --out "$OUT" \
  >/dev/null 2>"$OUT/loadtest.log" || LOADTEST_STATUS=failed

# The knee: the highest rate of the same mix that holds the SLO, and what saturated past it. Exit 1
# means a step broke (the usual end) or no step held; the report says which.
log "capacity search: ${CAPACITY[*]}"
rm -rf "$OUT/capacity"
"$APP" loadtest --base-url "$APP_URL" --find-capacity "${CAPACITY[@]}" --out "$OUT/capacity" \
  >/dev/null 2>"$OUT/capacity.log" || true
stop_app

# 2) and 3) the same GET by id with L1 off (served by Redis), then with no cache at all.
if ((HAS_CACHE)); then
  start_app l2 DB_POOL_MAX=20 REDIS_URL="$REDIS_URL" CACHE_L1_MAX_BYTES=0
  bench get-l2 "$GET_LUA"
  stop_app
  start_app uncached DB_POOL_MAX=20 CACHE_L1_MAX_BYTES=0
  bench get-uncached "$GET_LUA"
  stop_app
fi

# --- docs/benchmarks.md -------------------------------------------------------------------------
row() {
  local case=$1 what=$2
  if [[ -z ${RESULT[$case]:-} ]]; then
    echo "| $what | not measured: this build has no cache knobs | | | |"
    return
  fi
  printf '| %s | %s | %s | %s | %s |\n' "$what" "$(field "$case" rps)" "$(ms "$(field "$case" p50)")" \
    "$(ms "$(field "$case" p99)")" "$(field "$case" errors)/$(field "$case" requests)"
}
ratio() {
  [[ -n ${RESULT[$1]:-} && -n ${RESULT[$2]:-} ]] || { echo "n/a"; return; }
  awk -v a="$(field "$1" rps)" -v b="$(field "$2" rps)" 'BEGIN { printf "%.2fx", a / b }'
}
LT=$OUT/peak.json
lt() { sed -nE "s/.*\"$1\": ([0-9.e+-]+).*/\1/p" "$LT" | head -1; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
  echo "<!-- bench:begin (generated by scripts/bench.sh; edit the prose outside this block) -->"
  echo "$(bench_measured app Cargo.lock)."
  echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per case after a 3 s warm-up, on the same machine as the"
  echo "app, PostgreSQL and Redis. Data: 10,000 users, 1,001 projects, $(printf "%'d" $((100000 + EXPORT_TASKS)) 2>/dev/null || echo $((100000 + EXPORT_TASKS))) tasks (seeded in ${seed_seconds} s)."
  echo
  echo "| case | requests/s | p50 ms | p99 ms | errors |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  row get-l1 "GET /tasks/{id}, from L1 (in-process)"
  row get-l2 "GET /tasks/{id}, from L2 (Redis; L1 off: \`CACHE_L1_MAX_BYTES=0\`)"
  row get-uncached "GET /tasks/{id}, uncached (no Redis, L1 off)"
  row list "GET /tasks?page=1..50&limit=20 (offset, with total)"
  row list-project "GET /projects/{id}/tasks?limit=20 (100 tasks per project)"
  row list-keyset "GET /tasks?cursor=&limit=20 (keyset, first page)"
  row create "POST /tasks"
  echo
  echo "Ratios in this run: L1 / uncached $(ratio get-l1 get-uncached), L2 / uncached $(ratio get-l2 get-uncached)."
  if ((HAS_CACHE)); then
    echo "Cache hits during the measured GET runs (from \`/metrics\`): L1 case ${HITS[get-l1]:-n/a};"
    echo "L2 case ${HITS[get-l2]:-n/a}; uncached case ${HITS[get-uncached]:-n/a}."
  fi
  echo
  if [[ $EXPORT_STATUS == 200 ]]; then
    echo "Export of $EXPORT_TASKS tasks (\`GET /projects/{id}/tasks/export\`): $(printf '%.2f' "$EXPORT_SECONDS") s,"
    echo "$(awk -v n="$EXPORT_TASKS" -v s="$EXPORT_SECONDS" 'BEGIN { printf "%.0f", n / s }') rows/s,"
    echo "$(awk -v b="$EXPORT_BYTES" 'BEGIN { printf "%.1f", b / 1048576 }') MiB streamed; peak app RSS during the export $(mib "$RSS_EXPORT") MiB."
  else
    echo "Export of $EXPORT_TASKS tasks: not measured (HTTP $EXPORT_STATUS)."
  fi
  echo
  echo "App RSS: idle $(mib "$RSS_IDLE") MiB; under load (largest sample during the wrk cases) $(mib "$RSS_LOAD") MiB."
  echo
  if [[ -f $LT ]]; then
    echo "\`perfstack-app loadtest --scenario peak --scale $LOADTEST_SCALE\` (500 rps open model, 100 VUs, mixed"
    echo "reads/lists/writes): $LOADTEST_STATUS; $(lt requests) requests, $(lt throughputRps | xargs printf '%.1f') rps,"
    echo "p50 $(lt p50 | xargs printf '%.2f') ms, p95 $(lt p95 | xargs printf '%.2f') ms, p99 $(lt p99 | xargs printf '%.2f') ms, errors $(lt errorRatePct | xargs printf '%.2f') %."
  else
    echo "Load test: did not run (see bench-out/loadtest.log)."
  fi
  echo
  if [[ -s $OUT/capacity/capacity.txt ]]; then
    echo "Capacity search (\`loadtest --find-capacity ${CAPACITY[*]}\`: the peak mix at rising open-model"
    echo "rates; a step holds with p95 < 200 ms, p99 < 500 ms, errors < 1 % and the achieved rate within 5 % of"
    echo "the offered; the tester on the same cores):"
    echo
    echo '```'
    cat "$OUT/capacity/capacity.txt"
    echo '```'
  else
    echo "Capacity search: no report (see bench-out/capacity.log)."
  fi
  echo "<!-- bench:end -->"
} >"$OUT/block.md"

replace_generated_block "$DOC" bench "$OUT/block.md"
log "figures written to $DOC"
cat "$OUT/block.md"
