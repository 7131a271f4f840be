# The Grafana dashboard in the chart (charts/perfstack-operator/dashboards/perfstack.json), screenshot
# free: every metric its panels and variables query, and every metric the SLO rules the operator renders
# use, must be exported by the real binaries' /metrics: `perfstack-app serve` (with its workers, on the
# PostgreSQL and Redis of .run/env, after some traffic) and `perfstack-operator run` (against
# charts/tests/fake_apiserver.py: discovery and one stack, enough to start and reconcile). The checker must
# also refuse a dashboard that queries a metric nobody exports.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$PERFSTACK_ROOT"
[[ -n ${DATABASE_URL:-} ]] || source "$RUN_DIR/env"
command -v curl >/dev/null || apt_install curl

cargo build -q --bin perfstack-app --bin perfstack-operator
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do { kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; } || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_http() { # URL LOG
  for _ in $(seq 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$2" >&2
  die "$1 never answered"
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

target/debug/perfstack-app migrate >/dev/null
app_port=$(port)
JOBS_KEY_PREFIX=perfstack-dashboard-check:$RANDOM LISTEN_ADDR=127.0.0.1:$app_port \
  target/debug/perfstack-app serve >"$work/app.log" 2>&1 &
pids+=($!)
base=http://127.0.0.1:$app_port
wait_http "$base/readyz" "$work/app.log"
curl -fs "$base/api/v1/users?limit=2" >/dev/null
curl -s -o /dev/null "$base/api/v1/users/999999999"
curl -fs "$base/metrics" >"$work/app.txt"

python3 charts/tests/fake_apiserver.py "$work/api.port" &
pids+=($!)
for _ in $(seq 50); do [[ -s $work/api.port ]] && break; sleep 0.1; done
cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$(cat "$work/api.port")"}}]
users: [{name: fake, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: default}}]
current-context: fake
YAML
operator_port=$(port)
KUBECONFIG=$work/kubeconfig target/debug/perfstack-operator run --metrics-addr "127.0.0.1:$operator_port" \
  --log-format text >"$work/operator.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$operator_port/readyz" "$work/operator.log"
# The per-stack families have a sample once the fake's one stack was reconciled (as far as it goes).
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$operator_port/metrics" >"$work/operator.txt"
  grep -q '^perfstack_operator_tuned_pool_max_connections{' "$work/operator.txt" && break
  sleep 0.1
done

target/debug/perfstack-operator monitoring-rules --stack operator/tests/rules/stack.yaml >"$work/rules.yaml"
dashboard=charts/perfstack-operator/dashboards/perfstack.json
python3 charts/tests/check_dashboard.py "$dashboard" "$work/app.txt" "$work/operator.txt" --rules "$work/rules.yaml" ||
  die "the dashboard or the rules query metrics the binaries do not export"

# The check can fail: a panel querying a metric nobody exports is refused.
python3 - "$dashboard" "$work/bogus.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["panels"][1]["targets"][0]["expr"] = 'sum(rate(perfstack_http_requests_totl{stack="$stack"}[5m]))'
json.dump(d, open(sys.argv[2], "w"))
PY
if python3 charts/tests/check_dashboard.py "$work/bogus.json" "$work/app.txt" "$work/operator.txt" 2>/dev/null; then
  die "the dashboard check accepted a query of a metric nobody exports"
fi
log "dashboard: every query names a metric the app or the operator exports"
