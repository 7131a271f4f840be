# Checks outside cargo for the API's telemetry: the real binary's /metrics passes
# `promtool check metrics` and has every contract family, a tuning-file change resizes the pool
# live, and the /dashboard page draws its four charts and its process line (memory, CPU, Redis) in
# headless Chromium.
# Installs promtool (Debian `prometheus`) and `chromium` only when missing. Takes ~30 s.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$PERFSTACK_ROOT"
[[ -n ${DATABASE_URL:-} ]] || source "$RUN_DIR/env"

command -v promtool >/dev/null || apt_install prometheus
command -v chromium >/dev/null || apt_install chromium
command -v curl >/dev/null || apt_install curl

cargo build -q --bin perfstack-app
app=target/debug/perfstack-app
work=$(mktemp -d)
app_pid=
replica_pid=
cleanup() {
  for pid in $app_pid $replica_pid; do { kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; } || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$app" migrate >/dev/null
# listen_addr LOG : the address a `serve` started with LISTEN_ADDR=127.0.0.1:0 logged.
listen_addr() {
  local addr=
  for _ in $(seq 300); do
    addr=$(grep -o '"addr":"[0-9.:]*"' "$1" | head -1 | cut -d'"' -f4) || true
    [[ -n $addr ]] && { echo "$addr"; return; }
    sleep 0.1
  done
  cat "$1" >&2
  die "the app did not start listening"
}
cat >"$work/tuning.yaml" <<YAML
generation: 1
pool:
  minConnections: 1
  maxConnections: 6
  acquireTimeoutMs: 3000
  idleTimeoutSeconds: 60
YAML
LISTEN_ADDR=127.0.0.1:0 LOG_FORMAT=json TUNING_FILE=$work/tuning.yaml TUNING_POLL_MS=200 DASHBOARD_CACHE_MS=0 \
  "$app" serve >"$work/app.log" 2>&1 &
app_pid=$!
base=http://$(listen_addr "$work/app.log")
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$base/readyz" >/dev/null || { cat "$work/app.log" >&2; die "the app did not become ready"; }

metric() { curl -fs "$base/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
wait_metric() { # NAME VALUE
  for _ in $(seq 50); do [[ $(metric "$1") == "$2" ]] && return 0; sleep 0.1; done
  die "$1 never became $2 (is $(metric "$1"))"
}

# Some traffic: a user read through the cache, misses, a 404.
suffix=$RANDOM$RANDOM
user=$(curl -fs -H 'content-type: application/json' \
  -d "{\"email\":\"obs$suffix@example.org\",\"username\":\"obs$suffix\",\"firstName\":\"Obs\"}" \
  "$base/api/v1/users" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
[[ -n $user ]] || die "could not create a user"
for _ in $(seq 20); do curl -fs "$base/api/v1/users/$user" >/dev/null; done
curl -s -o /dev/null "$base/api/v1/users/999999999"
curl -fs "$base/api/v1/users?limit=5" >/dev/null

log "promtool check metrics"
curl -fs "$base/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || die "promtool rejected /metrics"
for family in perfstack_http_requests_total perfstack_http_request_duration_seconds_bucket \
  perfstack_http_requests_in_flight perfstack_db_pool_connections perfstack_db_pool_min_connections \
  perfstack_db_pool_max_connections perfstack_db_pool_waiting perfstack_db_pool_acquire_duration_seconds_bucket \
  perfstack_db_pool_acquire_timeouts_total perfstack_db_pool_settings_generation perfstack_cache_hits_total \
  perfstack_cache_misses_total perfstack_cache_redis_errors_total perfstack_db_query_duration_seconds_bucket \
  perfstack_process_resident_memory_bytes perfstack_memory_guard_actions_total; do
  grep -q "^$family" "$work/metrics.txt" || die "/metrics lacks $family"
done
grep -q 'route="/api/v1/users/{id}",method="GET",status_class="2xx"} 20' "$work/metrics.txt" \
  || die "requests are not counted per route template"
grep -q 'perfstack_cache_hits_total{level="l1"} 19' "$work/metrics.txt" || die "the user reads did not hit L1"

log "live pool resize through the tuning file"
wait_metric perfstack_db_pool_settings_generation 1
wait_metric perfstack_db_pool_max_connections 6
sed -i 's/generation: 1/generation: 2/; s/maxConnections: 6/maxConnections: 9/' "$work/tuning.yaml"
wait_metric perfstack_db_pool_settings_generation 2
wait_metric perfstack_db_pool_max_connections 9
echo "pool: [" >"$work/tuning.yaml"
sleep 0.6
[[ $(metric perfstack_db_pool_settings_generation) == 2 ]] || die "an invalid tuning file was applied"
grep -q "ignoring an invalid tuning file" "$work/app.log" || die "the invalid tuning file was not logged"

log "a write on one process evicts the other's L1 within a second"
LISTEN_ADDR=127.0.0.1:0 LOG_FORMAT=json "$app" serve >"$work/replica.log" 2>&1 &
replica_pid=$!
replica=http://$(listen_addr "$work/replica.log")
for _ in $(seq 100); do curl -fs "$replica/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
first_name() { curl -fs "$1/api/v1/users/$user" | grep -o '"firstName":"[^"]*"' | cut -d'"' -f4; }
for _ in 1 2 3; do [[ $(first_name "$replica") == Obs ]] || die "the replica does not serve the user"; done
curl -fs -X PATCH -H 'content-type: application/json' -d '{"firstName":"Changed"}' "$base/api/v1/users/$user" >/dev/null
written=$EPOCHREALTIME
seen=$(first_name "$replica")
while [[ $seen != Changed ]] && awk -v a="$written" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 1.0) }'; do
  sleep 0.05
  seen=$(first_name "$replica")
done
[[ $seen == Changed ]] || die "the replica still served '$seen' a second after the write"
curl -fs "$replica/metrics" | grep -q 'perfstack_cache_evictions_total{source="remote"} 1' \
  || die "the replica did not count the remote eviction"

log "dashboard in headless Chromium"
profile=$work/chromium-profile
mkdir -p "$profile"
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
  --disable-sync --no-first-run --user-data-dir="$profile" --window-size=1280,1000 --virtual-time-budget=8000)
(for _ in $(seq 40); do curl -fs "$base/api/v1/users/$user" >/dev/null; sleep 0.1; done) &
traffic=$!
timeout 60 chromium "${flags[@]}" --dump-dom "$base/dashboard" >"$work/dom.html" 2>"$work/chromium.log" || true
wait "$traffic"
grep -q 'data-charts-drawn="4"' "$work/dom.html" || { tail -5 "$work/chromium.log" >&2; die "the dashboard did not draw its 4 charts"; }
grep -Eq 'data-rounds="([2-9]|[1-9][0-9]+)"' "$work/dom.html" || die "the dashboard did not poll more than once"
for chart in latency throughput cache pool; do
  grep -Eq "<canvas id=\"$chart\"[^>]*data-points=\"[1-9]" "$work/dom.html" || die "the $chart chart has no data points"
done
grep -q "/api/v1/users/{id}" "$work/dom.html" || die "the dashboard table lacks the measured endpoint"
grep -Eq '<div id="process" data-cpu="[0-9][0-9.e-]*" data-redis-keys="[1-9]' "$work/dom.html" \
  || die "the dashboard does not show the process CPU and the Redis keys"
grep -Eq 'memory [0-9.]+ MiB - CPU [0-9.]+ cores.* - Redis [0-9.]+ MiB' "$work/dom.html" \
  || die "the dashboard's process line lacks memory, CPU or Redis"
timeout 60 chromium "${flags[@]}" --screenshot="$RUN_DIR/dashboard.png" "$base/dashboard" >/dev/null 2>&1 || true
[[ -s $RUN_DIR/dashboard.png ]] && log "dashboard screenshot: $RUN_DIR/dashboard.png"
log "observability checks passed"
