#!/usr/bin/env bash
# The tuner against a real API server with no node (e2e/lib.sh): a stack whose app pods (marked Running with 127.0.0.x pod IPs,
# as a kubelet would) are served by processes this script starts, reporting a full pool with waiting
# tasks and a p95 above the SLO. Asserts that the operator grows the pool in the tuning ConfigMap and
# raises the HPA floor, with status.tuning and Events saying why. Run by scripts/test.d/91-tuner-e2e.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PERFSTACK_ROOT"
e2e_init played
command -v python3 >/dev/null || apt_install python3

NS=pse2e-tuner-$(printf '%04x%04x' $RANDOM $RANDOM)
PORT=$(free_port)
METRICS_PORT=$(free_port)
PIDS=()
cleanup() {
  local rc=$?
  # The stack carries the operator's finalizer: delete it while the operator still runs.
  delete_stacks "$NS"
  for pid in "${PIDS[@]}"; do stop_process "$pid"; done
  K delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  ((rc == 0)) || log "tuner e2e FAILED (operator log: $WORK/tuner-operator.log)"
  exit $rc
}
trap cleanup EXIT

# An app pod's /metrics: counters grow by 50 requests per scrape, 10 % of them slower than 500 ms
# (p95 above the 200 ms SLO), a full pool of 19 with 6 tasks waiting, tuning generation 1.
serve_metrics() {
  python3 - "$1" "$PORT" <<'PY' &
import http.server, sys
host, port = sys.argv[1], int(sys.argv[2])
count = [0]
class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        count[0] += 50
        n = count[0]
        body = "\n".join([
            f'perfstack_http_requests_total{{route="/api/v1/tasks",method="GET",status_class="2xx"}} {n}',
            f'perfstack_http_request_duration_seconds_bucket{{route="/api/v1/tasks",method="GET",le="0.1"}} {n * 9 // 10}',
            f'perfstack_http_request_duration_seconds_bucket{{route="/api/v1/tasks",method="GET",le="0.5"}} {n * 9 // 10}',
            f'perfstack_http_request_duration_seconds_bucket{{route="/api/v1/tasks",method="GET",le="1"}} {n}',
            f'perfstack_http_request_duration_seconds_bucket{{route="/api/v1/tasks",method="GET",le="+Inf"}} {n}',
            'perfstack_db_pool_connections{state="in_use"} 19',
            'perfstack_db_pool_connections{state="idle"} 0',
            'perfstack_db_pool_min_connections 2',
            'perfstack_db_pool_max_connections 19',
            'perfstack_db_pool_waiting 6',
            'perfstack_db_pool_settings_generation 1', ''])
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer((host, port), Metrics).serve_forever()
PY
  PIDS+=($!)
}
serve_metrics 127.0.0.61
serve_metrics 127.0.0.62

install_crds
K create namespace "$NS" >/dev/null
: >"$WORK/tuner-operator.log"
operator_process ./target/debug/perfstack-operator "$WORK/tuner-operator.log" "$METRICS_PORT" e2e-tuner \
  --namespaces "$NS" --tuner-scrape pod-ip
PIDS+=("$OPERATOR_PID")

K apply --validate=false -n "$NS" -f - >/dev/null <<YAML
apiVersion: perfstack.dev/v1alpha1
kind: PerformanceStack
metadata:
  name: tuned
spec:
  app: {port: $PORT, minReplicas: 2, maxReplicas: 10}
  pool: {minConnections: 2, maxConnections: 40}
  cache: {mode: Disabled}
  migrations: {enabled: false}
  tuning: {mode: Auto, intervalSeconds: 10}
YAML

# Plays the kubelet for the app pods: Running and Ready at the addresses the processes listen on.
mark_pods() {
  local ip=61 pod
  for pod in $(K get pods -n "$NS" -l "app.kubernetes.io/component=api" -o jsonpath='{range .items[*]}{.metadata.name}{" "}{end}'); do
    mark_pod_running "$NS" "$pod" "127.0.0.$ip"
    ip=$((ip + 1))
    ((ip <= 62)) || break
  done
}
two_pods() { [[ $(K get pods -n "$NS" -l "app.kubernetes.io/component=api" -o name | wc -l) -ge 2 ]]; }
wait_for 60 "two app pods" two_pods
mark_pods
pass "app pods Running at 127.0.0.61-62:$PORT"

tuning_generation() { K get configmap -n "$NS" tuned-tuning -o jsonpath='{.data.tuning\.yaml}' | sed -n 's/^generation: //p'; }
pool_max() { K get configmap -n "$NS" tuned-tuning -o jsonpath='{.data.tuning\.yaml}' | sed -n 's/^ *maxConnections: //p'; }
pool_grew() { mark_pods; (($(pool_max) > 19)); }  # 10 x 40 + 10 > 200: capped at 19 until the tuner trades
wait_for 90 "the tuning ConfigMap's pool to grow past 19" pool_grew
pass "pool grown to $(pool_max) at generation $(tuning_generation)"

status_json() { K get pstack -n "$NS" tuned -o json; }
# The lab is shared: another checkout may have applied an older CRD that prunes status.tuning.
explained() {
  K apply --validate=false -f crds/ >/dev/null
  [[ $(status_json | jq -r '.status.tuning.lastDecision.reason // ""') == *"waiting per pod"* ]]
}
wait_for 60 "status.tuning.lastDecision.reason explaining the pool" explained
reason=$(status_json | jq -r '.status.tuning.lastDecision.reason')
budget=$(status_json | jq -r '.status.conditions[] | select(.type == "ConnectionBudget") | "\(.status) \(.reason)"')
[[ $budget == "True "* ]] || fail "ConnectionBudget condition: $budget"
pass "status.tuning says why ($reason); ConnectionBudget $budget"

floor() { status_json | jq -r '.status.tuning.inForce.minReplicas // 0'; }
floor_raised() { mark_pods; (($(floor) > 2)); }
wait_for 90 "the HPA floor to rise above 2 (p95 above the SLO)" floor_raised
pass "HPA floor raised to $(floor)"
p95=$(status_json | jq -r '.status.observedP95 // ""')
[[ $p95 == *ms ]] || fail "status.observedP95 not reported: '$p95'"
pass "status.observedP95 $p95"

events() { K get events -n "$NS" -o json | jq -r '.items[] | "\(.reason) \(.note // .message // "")"'; }
has_event() { events | grep -q '^PoolResized .*waiting per pod'; }
wait_for 30 "a PoolResized Event with the reason" has_event
pass "Events: $(events | grep -c '^PoolResized\|^ReplicaFloor') tuning events"
log "tuner e2e passed in ${SECONDS}s"
