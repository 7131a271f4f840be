#!/usr/bin/env bash
# `make e2e-faults`: faults on the k8s-lab's real node, under load, and what they cost.
# Builds on the node suite's set-up (e2e/node-lib.sh: release binaries, images, the operator from the
# Helm chart with two replicas and leader election). Each scenario runs the load tester at a steady
# rate against a Ready stack (reads, lists, task writes with an assignee, so an email job each, and
# 1 % report jobs: the API allows one caller 30 a minute, and behind the Service every request comes
# from the node's address), injects one fault, and records: requests failed by kind, the longest run of seconds
# with failures, the time until the stack is Ready again, the time until p95 is back under the SLO,
# jobs accepted vs finished vs dead vs lost (the load tester's ledger of job ids and created tasks
# against PostgreSQL's rows), side effects that happened twice, and acknowledged writes missing.
# A scenario passes when nothing acknowledged is lost, no effect happened twice, and the stack
# recovers within its bound. Figures: e2e/.work/faults-figures.tsv (docs/reliability.md).
#
# FAULTS (space-separated names, default: all, in order) picks scenarios; FAULT_LOAD_SECONDS (75),
# FAULT_AT_SECONDS (15), FAULT_RATE (40 requests/s) and FAULT_RECOVERY_BOUND_S (180) shape them.
# FAULTS_DOC (set by `make e2e-faults` to docs/reliability.md; empty in make test): after a run of every
# scenario, the figures replace that doc's generated block.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/node-lib.sh"
cd "$PERFSTACK_ROOT"
SUITE=faults
e2e_init node

ALL_FAULTS="pg-kill pg-delete redis api-kill api-delete operator apiserver pg-slow"
FAULTS=${FAULTS:-$ALL_FAULTS}
LOAD_S=${FAULT_LOAD_SECONDS:-75}
FAULT_AT=${FAULT_AT_SECONDS:-15}
RATE=${FAULT_RATE:-40}
BOUND_S=${FAULT_RECOVERY_BOUND_S:-180}
# The SLO the load tester asserts (docs/loadtest.md): p95 under 200 ms.
SLO_P95_MS=200
for f in $FAULTS; do [[ " $ALL_FAULTS " == *" $f "* ]] || die "unknown fault '$f' (known: $ALL_FAULTS)"; done

node_suite_start psfault "fault suite"
FIGURES=$WORK/$SUITE-figures.tsv
FAILED_SCENARIOS=()
service_range_guard on

# ---------- the stack under test ----------
step "release binaries, images, the operator (2 replicas) and a Ready stack"
build_release
build_images
install_crds
e2e_namespace "$NS"
e2e_namespace "$SYS"
install_operator "$REL" "$SYS" "$NS" --set replicaCount=2
K apply -n "$NS" -f examples/minimal.yaml >/dev/null
stack_ready() { [[ $(condition "$NS" "$STACK" Ready) == True ]]; }
wait_for 300 "$STACK to become Ready" stack_ready
seed_stack "$NS" "$STACK" 500 50 5000
pass "operator from $OPERATOR_IMAGE ($IMAGE_BUILDER), $STACK Ready and seeded"

# ---------- tools ----------
# pg_sql : runs the SQL on stdin in the bundled PostgreSQL (psql inside its pod, the stack's own user).
pg_sql() {
  K exec -i -n "$NS" "$STACK-postgres-0" -c postgres -- sh -c \
    'psql -X -q -v ON_ERROR_STOP=1 -At -F "	" -U "$POSTGRES_USER" -d "${POSTGRES_DB:-$POSTGRES_USER}"'
}

# container_kill NS POD CONTAINER : kill -9 every process of one container, from the node (as the
# OOM killer or a crash would); the kubelet restarts the container in place, same pod, same claim.
container_kill() {
  local cid dir
  cid=$(K get pod -n "$1" "$2" -o json |
    jq -r --arg c "$3" '.status.containerStatuses[]? | select(.name == $c) | .containerID // ""')
  cid=${cid#containerd://}
  [[ -n $cid ]] || fail "pod $2 has no running container $3"
  dir=$(find /sys/fs/cgroup/pids/kubepods -maxdepth 4 -type d -name "$cid" 2>/dev/null | head -1)
  [[ -n $dir ]] || fail "no cgroup for container $3 ($cid) of $2 (the lab's node uses cgroups v1 with the cgroupfs driver)"
  # Processes of the container may end between the read and the kill (a backend that was exiting):
  # that is not a failure; the scenario's recovery check counts the container's restart.
  xargs -r kill -9 <"$dir/cgroup.procs" 2>/dev/null || true
}

restarts() { K get pod -n "$1" "$2" -o json | jq -r --arg c "$3" '.status.containerStatuses[]? | select(.name == $c) | .restartCount'; }
pod_uid() { K get pod -n "$1" "$2" -o jsonpath='{.metadata.uid}' 2>/dev/null; }
api_pods() { K get pods -n "$NS" -l "perfstack.dev/stack=$STACK,app.kubernetes.io/component=api" -o jsonpath='{.items[*].metadata.name}'; }
leader() { K get lease -n "$SYS" "$REL-perfstack-operator" -o jsonpath='{.spec.holderIdentity}'; }

# healthy : the stack is Ready, both stores and at least two API pods are Ready, and the API Service
# answers its readiness probe.
healthy() {
  stack_ready || return 1
  [[ $(K get pod -n "$NS" "$STACK-postgres-0" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] || return 1
  [[ $(K get pod -n "$NS" "$STACK-redis-0" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] || return 1
  (($(api_pod_ips "$NS" "$STACK" | wc -l) >= 2)) || return 1
  curl -fsS --max-time 2 "$(service_url "$NS" "$STACK")/readyz" >/dev/null 2>&1
}

# ---------- the faults ----------
# Each inject_* runs at FAULT_AT seconds into the load; each may define what "recovered" means
# beyond healthy (recovered_* , default: healthy).
inject_pg-kill() {
  PG_RESTARTS=$(restarts "$NS" "$STACK-postgres-0" postgres)
  container_kill "$NS" "$STACK-postgres-0" postgres
  FAULT_NOTE="kill -9 of PostgreSQL's processes (restart count was $PG_RESTARTS)"
}
recovered_pg-kill() { (($(restarts "$NS" "$STACK-postgres-0" postgres) > PG_RESTARTS)) && healthy; }

inject_pg-delete() {
  PG_UID=$(pod_uid "$NS" "$STACK-postgres-0")
  K delete pod -n "$NS" "$STACK-postgres-0" --wait=false >/dev/null
  FAULT_NOTE="PostgreSQL's pod deleted (graceful, 30 s grace), recreated by its StatefulSet on the same claim"
}
recovered_pg-delete() { [[ -n $(pod_uid "$NS" "$STACK-postgres-0") && $(pod_uid "$NS" "$STACK-postgres-0") != "$PG_UID" ]] && healthy; }

inject_redis() {
  REDIS_UID=$(pod_uid "$NS" "$STACK-redis-0")
  # Jobs running and queued at the kill, for certain (hold_jobs: 6 reports, 4 handlers).
  hold_jobs 6
  ((HELD_RUNNING > 0)) || SCENARIO_WHY+=("no job was running when Redis was killed")
  container_kill "$NS" "$STACK-redis-0" redis
  # The restarted container first, then the pod itself, both while report jobs queue and run.
  redis_back() { [[ $(K get pod -n "$NS" "$STACK-redis-0" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
  wait_for 60 "Redis to come back after the kill" redis_back
  sleep 5
  K delete pod -n "$NS" "$STACK-redis-0" --wait=false >/dev/null
  FAULT_NOTE="kill -9 of Redis with $HELD_RUNNING job(s) running and $HELD_READY ready in the queue (held by an 8 s lock on tasks), then its pod deleted once it was back"
}
recovered_redis() { [[ $(pod_uid "$NS" "$STACK-redis-0") != "$REDIS_UID" ]] && healthy; }

# hold_jobs N : jobs in flight for certain. A session locks the tasks table for 8 s, which holds every
# job whose handler reads tasks (reports, assignment emails) in its handler; N report jobs are asked
# for at once (each API pod runs 2 report handlers, so beyond 4 they wait in the queue). Waits (7 s at
# most) until the API pods' /metrics show jobs in flight, then sets HELD_POD (the pod holding the
# most), HELD_MOST (its count), HELD_RUNNING (all pods) and HELD_READY (jobs ready in the queue, as
# the pods last sampled Redis).
hold_jobs() {
  (pg_sql <<<"BEGIN; LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT;" >/dev/null 2>&1 &)
  local project i pod ip metrics n deadline=$((SECONDS + 7))
  project=$(curl -fsS --max-time 5 "$API/api/v1/projects?limit=1" | jq -r '.data[0].id')
  for ((i = 0; i < $1; i++)); do
    curl -sS --max-time 5 -H 'content-type: application/json' \
      -d "{\"type\":\"projectTaskStats\",\"parameters\":{\"projectId\":$project}}" "$API/api/v1/reports" |
      jq -c 'select(.jobId != null) | {operation: "createReport", status: 202, jobId, atMs: 0}' >>"$dir/extra-ledger.jsonl" || true
  done
  HELD_POD='' HELD_MOST=0 HELD_RUNNING=0 HELD_READY=0
  while ((HELD_RUNNING == 0 && SECONDS < deadline)); do
    for pod in $(api_pods); do
      ip=$(K get pod -n "$NS" "$pod" -o jsonpath='{.status.podIP}')
      metrics=$(curl -fsS --max-time 2 "http://$ip:8080/metrics" 2>/dev/null) || continue
      n=$(awk '$1 ~ /^perfstack_jobs_in_flight/ { s += $2 } END { print s + 0 }' <<<"$metrics")
      HELD_RUNNING=$((HELD_RUNNING + n))
      ((n > HELD_MOST)) && { HELD_MOST=$n; HELD_POD=$pod; }
      n=$(awk '$1 ~ /^perfstack_job_queue_depth\{/ && $1 ~ /place="ready"/ { s += $2 } END { printf "%d", s }' <<<"$metrics")
      ((n > HELD_READY)) && HELD_READY=$n
    done
    ((HELD_RUNNING > 0)) || sleep 0.3
  done
  [[ -n $HELD_POD ]] || HELD_POD=$(api_pods | awk '{print $1}')
}

inject_api-kill() {
  # kill -9 of the API pod holding the most jobs in flight (every API pod runs workers): their
  # leases must expire and another worker must finish them, each effect once.
  hold_jobs 4
  ((HELD_MOST > 0)) || SCENARIO_WHY+=("no API pod had a job in flight to kill")
  API_POD=$HELD_POD API_RESTARTS=$(restarts "$NS" "$HELD_POD" api)
  container_kill "$NS" "$HELD_POD" api
  FAULT_NOTE="kill -9 of API pod $HELD_POD while it held $HELD_MOST job(s) in flight (kept there by an 8 s lock on tasks)"
}
recovered_api-kill() { (($(restarts "$NS" "$API_POD" api) > API_RESTARTS)) && healthy; }

inject_api-delete() {
  API_PODS_BEFORE=$(api_pods)
  K delete pods -n "$NS" -l "perfstack.dev/stack=$STACK,app.kubernetes.io/component=api" --wait=false >/dev/null
  FAULT_NOTE="every API pod deleted at once ($(wc -w <<<"$API_PODS_BEFORE"))"
}
recovered_api-delete() {
  local pod
  for pod in $(api_pods); do [[ " $API_PODS_BEFORE " != *" $pod "* ]] || return 1; done
  healthy
}

inject_operator() {
  # The Lease holder's pod killed (deleted with no grace: its container gets SIGKILL) while a second
  # stack is being provisioned and while this one's tuner runs under load; the other replica must
  # take the Lease over and converge both, with no duplicate children.
  # The tuner deciding every 10 s and shrinking after 20 s of low use, so that it is changing the
  # pool around the takeover; the decision in force then must survive it (below).
  K patch pstack -n "$NS" "$STACK" --type=merge \
    -p '{"spec":{"tuning":{"intervalSeconds":10,"scaleDownStabilizationSeconds":20}}}' >/dev/null
  sleep 20
  TUNING_BEFORE=$(tuning_in_force)
  K apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: perfstack.dev/v1alpha1
kind: PerformanceStack
metadata: {name: second}
spec: {}
EOF
  # And a pool change asked for just before the kill (acquireTimeoutMs 3000 -> 2500: a new tuning
  # file, no restart), which the new leader must put in force if the old one did not.
  K patch pstack -n "$NS" "$STACK" --type=merge -p '{"spec":{"pool":{"acquireTimeoutMs":2500}}}' >/dev/null
  sleep 1
  OLD_LEADER=$(leader)
  K delete pod -n "$SYS" "$OLD_LEADER" --grace-period=0 --force >/dev/null 2>&1
  FAULT_NOTE="the Lease holder's pod $OLD_LEADER killed (no grace), 1 s after a second stack was applied and a pool change (acquireTimeoutMs 2500) was asked for, the tuner deciding every 10 s (tuning file generation, pool max: $TUNING_BEFORE)"
}
# tuning_acquire_ms : the acquireTimeoutMs of $STACK's tuning file.
tuning_acquire_ms() {
  K get configmap -n "$NS" "$STACK-tuning" -o jsonpath='{.data.tuning\.yaml}' | awk '/^ *acquireTimeoutMs:/ { print $2 }'
}
# tuning_in_force : "generation pool-max" of the tuning file the operator wrote for $STACK.
tuning_in_force() {
  K get configmap -n "$NS" "$STACK-tuning" -o jsonpath='{.data.tuning\.yaml}' |
    awk '/^generation:/ { g = $2 } /^ *maxConnections:/ { m = $2 } END { print g + 0, m + 0 }'
}
# tuning_reported : "generation pool-max" the stack's status reports as in force.
tuning_reported() {
  stack_json "$NS" "$STACK" | jq -r '.status.tuning.inForce // {} | "\(.generation // 0) \(.poolMax // 0)"'
}
recovered_operator() {
  [[ -n $(leader) && $(leader) != "$OLD_LEADER" ]] || return 1
  [[ $(condition "$NS" second Ready) == True ]] && healthy
}
# after_operator : one of each child for the stack provisioned across the takeover, and the
# second stack removed again (the node runs one stack under load at a time).
after_operator() {
  local kind want n
  for kind in deployment statefulset job service configmap hpa; do
    case $kind in deployment) want=1 ;; statefulset) want=2 ;; job) want=1 ;; service) want=3 ;; configmap) want=2 ;; hpa) want=1 ;; esac
    n=$(K get "$kind" -n "$NS" -l perfstack.dev/stack=second -o name | wc -l)
    ((n == want)) || SCENARIO_WHY+=("stack 'second' has $n ${kind}s after the takeover, not $want")
  done
  log "operator: the Lease moved from $OLD_LEADER to $(leader)"
  # No tuning decision lost: the tuning file did not go back to an older generation, the pool change
  # asked for before the kill is in force, and the new leader's status reports the file in force.
  local after
  after=$(tuning_in_force)
  ((${after% *} >= ${TUNING_BEFORE% *})) ||
    SCENARIO_WHY+=("the tuning file went back from generation ${TUNING_BEFORE% *} to ${after% *} across the takeover")
  local deadline=$((SECONDS + 60))
  until [[ $(tuning_acquire_ms) == 2500 && $(tuning_reported) == "$(tuning_in_force)" ]]; do
    ((SECONDS < deadline)) || {
      SCENARIO_WHY+=("60 s after the takeover the tuning file has acquireTimeoutMs $(tuning_acquire_ms), not 2500, or status.tuning.inForce ($(tuning_reported)) is not the file in force ($(tuning_in_force))")
      break
    }
    sleep 1
  done
  log "operator: tuning file (generation, pool max) $TUNING_BEFORE before the takeover, $(tuning_in_force) after"
  K patch pstack -n "$NS" "$STACK" --type=merge -p '{"spec":{"tuning":null,"pool":null}}' >/dev/null
  K delete pstack -n "$NS" second --wait=false >/dev/null
}

inject_apiserver() {
  # Restart the lab's kube-apiserver process with the flags it runs with (a control-plane upgrade
  # or crash), right after a spec change the operator must carry out.
  local pidfile=$LAB_DIR/apiserver.pid pid
  pid=$(cat "$pidfile")
  mapfile -d '' -t APISERVER_CMD <"/proc/$pid/cmdline"
  K patch pstack -n "$NS" "$STACK" --type=merge -p '{"spec":{"app":{"maxReplicas":4}}}' >/dev/null
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  sleep 5
  # The lab knows its apiserver by this pid file: the subshell execs setsid, which execs the server.
  (cd "$LAB_DIR" && exec setsid "${APISERVER_CMD[@]}" >>apiserver.log 2>&1 </dev/null) &
  echo $! >"$pidfile"
  FAULT_NOTE="kube-apiserver stopped for 5 s and started again, right after a spec change (maxReplicas 4)"
}
recovered_apiserver() {
  K get --raw /readyz >/dev/null 2>&1 || return 1
  [[ $(K get hpa -n "$NS" "$STACK-api" -o jsonpath='{.spec.maxReplicas}' 2>/dev/null) == 4 ]] && healthy
}

inject_pg-slow() {
  # A session holds an exclusive lock on the tasks table for 20 s: every statement on tasks waits.
  (pg_sql <<<"BEGIN; LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT;" >/dev/null 2>&1 &)
  FAULT_NOTE="an ACCESS EXCLUSIVE lock on tasks held for 20 s (every statement on tasks waits)"
}
recovered_pg-slow() { healthy; }

# ---------- what a scenario left behind ----------
# account DIR : figures from the ledger and PostgreSQL into DIR/account.tsv (name, value lines).
account() {
  local dir=$1
  {
    echo "CREATE TEMP TABLE acked_tasks (id BIGINT); CREATE TEMP TABLE acked_jobs (job_id TEXT);"
    echo "COPY acked_tasks FROM STDIN;"
    jq -r 'select(.operation == "createTask" and .taskId != null) | .taskId' "$dir"/*ledger.jsonl
    echo '\.'
    echo "COPY acked_jobs FROM STDIN;"
    # The load tester's ledger, and the jobs a scenario asked for itself (extra-ledger.jsonl).
    jq -r 'select(.operation == "createReport" and .jobId != null) | .jobId' "$dir"/*ledger.jsonl
    echo '\.'
    cat <<'SQL'
CREATE TEMP VIEW email_jobs AS
  SELECT a.id AS task_id, j.job_id, j.state, j.finished_at
  FROM acked_tasks a JOIN jobs j ON j.queue = 'email' AND j.payload->>'kind' = 'taskAssigned'
   AND (j.payload->>'taskId')::BIGINT = a.id;
SELECT 'tasks_acked', count(*) FROM acked_tasks
UNION ALL SELECT 'tasks_missing', count(*) FROM acked_tasks a WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = a.id)
UNION ALL SELECT 'email_jobs', count(*) FROM email_jobs
UNION ALL SELECT 'email_lost', count(*) FROM acked_tasks a WHERE NOT EXISTS (SELECT 1 FROM email_jobs e WHERE e.task_id = a.id)
UNION ALL SELECT 'email_succeeded', count(*) FROM email_jobs WHERE state = 'succeeded'
UNION ALL SELECT 'email_dead', count(*) FROM email_jobs WHERE state = 'dead'
UNION ALL SELECT 'email_unfinished', count(*) FROM email_jobs WHERE finished_at IS NULL
UNION ALL SELECT 'email_twice', count(*) FROM (SELECT task_id FROM email_jobs GROUP BY task_id HAVING count(*) > 1) d
UNION ALL SELECT 'outbox_twice', count(*) FROM (SELECT e.task_id FROM email_jobs e JOIN outbox o ON o.job_id = e.job_id GROUP BY e.task_id HAVING count(*) > 1) d
UNION ALL SELECT 'outbox_missing', count(*) FROM email_jobs e WHERE e.state = 'succeeded' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = e.job_id)
UNION ALL SELECT 'reports_acked', count(*) FROM acked_jobs
UNION ALL SELECT 'reports_succeeded', count(*) FROM acked_jobs a JOIN jobs j USING (job_id) WHERE j.state = 'succeeded'
UNION ALL SELECT 'reports_dead', count(*) FROM acked_jobs a JOIN jobs j USING (job_id) WHERE j.state = 'dead'
UNION ALL SELECT 'reports_unfinished', count(*) FROM acked_jobs a JOIN jobs j USING (job_id) WHERE j.finished_at IS NULL
UNION ALL SELECT 'reports_lost', count(*) FROM acked_jobs a WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = a.job_id)
UNION ALL SELECT 'report_rows_missing', count(*) FROM acked_jobs a JOIN jobs j USING (job_id) WHERE j.state = 'succeeded' AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.job_id = a.job_id)
UNION ALL SELECT 'report_rows_twice', count(*) FROM (SELECT r.job_id FROM reports r JOIN acked_jobs a USING (job_id) GROUP BY r.job_id HAVING count(*) > 1) d;
SQL
  } | pg_sql >"$dir/account.tsv"
}
figure_of() { awk -F'\t' -v n="$2" '$1 == n { print $2 }' "$1/account.tsv"; }

# timeline_figures REPORT FAULT_SECOND : "longest_failure_run_s p95_back_s" from the report's
# per-second timeline (by the second a request was answered): the longest run of consecutive seconds
# with a failed request or with no answer at all (the rate is steady, so a second without answers is
# a stall: the requests of those seconds wait, and fail or succeed later), and how long after the
# fault's second p95 went under the SLO for good (-1: not within the run); seconds with fewer than 5
# answers (the run's last, partial one) are too few for a p95.
timeline_figures() {
  jq -r --argjson f "$2" --argjson slo "$SLO_P95_MS" '
    .results.timeline as $t
    | ([$t[] | select(.requests > 0) | .second] | max) as $answered
    | ([foreach ($t[] | select(.second <= $answered)) as $s ({run: 0, best: 0};
         .run = (if $s.errors > 0 or $s.requests == 0 then .run + 1 else 0 end) | .best = ([.best, .run] | max); .best)] | max // 0) as $longest
    | ([$t[] | select(.second >= $f and .requests >= 5 and .p95Ms >= $slo) | .second] | max) as $last_bad
    | ($t | map(.second) | max) as $final
    | (if $last_bad == null then 0 elif $last_bad >= $final then -1 else $last_bad + 1 - $f end) as $back
    | "\($longest) \($back)"' "$1"
}

# serves_again DIR : once the stack is healthy again, it must answer: 20 reads through the Service of
# tasks the load tester created (acknowledged, so they exist) must all be 200. Failed requests during
# the fault are measured, not judged; a stack that looks healthy but answers wrongly is a failure.
serves_again() {
  local id code bad=()
  # The load tester may still be writing its ledger: a partial last line is skipped.
  for id in $(jq -rR 'fromjson? | select(.operation == "createTask" and .taskId != null) | .taskId' "$1/ledger.jsonl" | tail -20); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$API/api/v1/tasks/$id") || true
    [[ $code == 200 ]] || bad+=("$id:$code")
    sleep 0.1
  done
  ((${#bad[@]} == 0)) || SCENARIO_WHY+=("healthy again, yet reads of acknowledged tasks through the Service failed (${bad[*]})")
}

# ---------- one scenario ----------
run_scenario() {
  local name=$1 dir=$WORK/faults/$1 launched fault_at recovered_s report fault_second
  rm -rf "$dir" && mkdir -p "$dir"
  step "fault $name under $RATE requests/s"
  wait_for 300 "$STACK healthy before $name" healthy
  API=$(service_url "$NS" "$STACK")
  : >"$dir/budget.txt"
  sample_budget "$dir/budget.txt" &
  SAMPLER=$!
  launched=$EPOCHREALTIME
  "$RELEASE_DIR/perfstack-app" loadtest --base-url "$API" --rate "$RATE" --duration "$LOAD_S" --report-pct 1 \
    --request-timeout-ms 10000 --ledger "$dir/ledger.jsonl" --out "$dir" >"$dir/loadtest.log" 2>&1 &
  LOAD=$!
  sleep "$FAULT_AT"
  fault_at=$EPOCHREALTIME
  FAULT_NOTE= SCENARIO_WHY=()
  "inject_$name"
  sleep 3
  wait_for "$BOUND_S" "$name: recovery" "recovered_$name"
  recovered_s=$(awk -v ms="$(ms_since "$fault_at")" 'BEGIN { printf "%.1f", ms / 1000 }')
  ! declare -F "after_$name" >/dev/null || "after_$name"
  serves_again "$dir"
  wait "$LOAD" || true  # its SLO checks fail under a fault by design; the figures below judge it
  LOAD=
  stop_process "$SAMPLER"
  SAMPLER=
  report=$(ls "$dir"/*.json 2>/dev/null | head -1)
  [[ -f $report ]] || { tail -20 "$dir/loadtest.log" >&2; fail "$name: the load tester wrote no report"; }

  # Jobs settle: every job of the ledger finished (or dead), within a reconcile interval and a
  # lease after the load (the reconciler re-enqueues what Redis lost; leases of killed workers expire).
  settled() { account "$dir" && [[ $(figure_of "$dir" email_unfinished) == 0 && $(figure_of "$dir" reports_unfinished) == 0 ]]; }
  wait_for 180 "$name: the ledger's jobs to finish" settled

  fault_second=$(awk -v a="$launched" -v b="$fault_at" 'BEGIN { printf "%d", b - a - 1 }')
  read -r longest p95_back <<<"$(timeline_figures "$report" "$fault_second")"
  local requests failed kinds budget_peak server
  requests=$(jq -r '.results.requests' "$report")
  failed=$(jq -r '.results.errors' "$report")
  kinds=$(jq -r '.results.errorsByKind | to_entries | map("\(.key) \(.value)") | join(", ")' "$report")
  budget_peak=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$dir/budget.txt")
  server=$(awk '$3 > 0 { s = $3 } END { print s + 0 }' "$dir/budget.txt")
  local a="$dir" tasks_acked tasks_missing email_lost email_twice outbox_twice reports_acked reports_lost
  tasks_acked=$(figure_of "$a" tasks_acked) tasks_missing=$(figure_of "$a" tasks_missing)
  email_lost=$(figure_of "$a" email_lost) email_twice=$(figure_of "$a" email_twice) outbox_twice=$(figure_of "$a" outbox_twice)
  reports_acked=$(figure_of "$a" reports_acked) reports_lost=$(figure_of "$a" reports_lost)
  local jobs_acked=$((tasks_acked - email_lost + reports_acked)) jobs_done jobs_dead
  jobs_done=$(($(figure_of "$a" email_succeeded) + $(figure_of "$a" reports_succeeded)))
  jobs_dead=$(($(figure_of "$a" email_dead) + $(figure_of "$a" reports_dead)))
  local lost=$((email_lost + reports_lost + $(figure_of "$a" outbox_missing) + $(figure_of "$a" report_rows_missing)))
  local twice=$((email_twice + outbox_twice + $(figure_of "$a" report_rows_twice)))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$requests" "$failed" "${kinds:-none}" \
    "$longest" "$recovered_s" "$p95_back" "$jobs_acked" "$jobs_done" "$jobs_dead" "$lost $twice" \
    "$((tasks_acked - tasks_missing))/$tasks_acked" >>"$FIGURES"
  log "$name: $FAULT_NOTE"
  log "$name: $failed of $requests requests failed (${kinds:-none}); longest run of seconds failing or unanswered ${longest} s;" \
    "Ready again after ${recovered_s} s; p95 back under ${SLO_P95_MS} ms after ${p95_back} s;" \
    "jobs ${jobs_acked} accepted, ${jobs_done} succeeded, ${jobs_dead} dead, ${lost} lost, ${twice} twice;" \
    "tasks $((tasks_acked - tasks_missing)) of ${tasks_acked} acknowledged present; pools at most $budget_peak of $server"

  local why=("${SCENARIO_WHY[@]}")
  ((tasks_missing == 0)) || why+=("$tasks_missing acknowledged task(s) missing")
  ((lost == 0)) || why+=("$lost job(s) lost")
  ((twice == 0)) || why+=("$twice effect(s) happened twice")
  ((p95_back >= 0)) || why+=("p95 not back under ${SLO_P95_MS} ms before the load ended")
  ((server == 0 || budget_peak + RESERVED <= server)) || why+=("connection budget broke: $budget_peak + $RESERVED > $server")
  if ((${#why[@]})); then
    FAILED_SCENARIOS+=("$name: ${why[*]}")
    log "FAIL $name: ${why[*]}"
  else
    pass "$name: nothing acknowledged lost, no effect twice, recovered in ${recovered_s} s"
  fi
}

LAB_DIR=${K8S_LAB_DIR:-/tmp/k8s-lab}
RESERVED=$(stack_json "$NS" "$STACK" | jq -r '.spec.database.reservedConnections // 10')
printf 'scenario\trequests\tfailed\tfailed_by_kind\tlongest_failure_run_s\tready_again_s\tp95_back_s\tjobs_accepted\tjobs_succeeded\tjobs_dead\tlost_twice\ttasks_present\n' >"$FIGURES"
for name in $FAULTS; do run_scenario "$name"; done

log "fault suite finished in ${SECONDS} s; figures ($FIGURES):"
column -t -s $'\t' "$FIGURES" >&2

# With FAULTS_DOC (`make e2e-faults` sets docs/reliability.md) and every scenario run: the figures
# replace the doc's generated block (commit, date and machine included; the prose stays outside it).
if [[ -n ${FAULTS_DOC:-} && $FAULTS == "$ALL_FAULTS" ]]; then
  block=$WORK/faults-doc-block.md
  {
    echo "<!-- faults:begin (generated by e2e/faults.sh from $SUITE-figures.tsv; edit the prose outside this block) -->"
    echo "$(bench_measured e2e app operator contract); \`make e2e-faults\` on the lab's node (Kubernetes"
    echo "$(K version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion // "?"'), images from the project's Dockerfiles, $IMAGE_BUILDER). $RATE requests/s for $LOAD_S s per"
    echo "scenario, the fault at $FAULT_AT s. The suite took ${SECONDS} s and $( ((${#FAILED_SCENARIOS[@]})) && echo "FAILED: ${FAILED_SCENARIOS[*]}" || echo "passed: every scenario met its acceptance")."
    echo
    echo "| scenario | requests | failed (by kind) | longest run of seconds failing or unanswered | healthy again after | p95 back under ${SLO_P95_MS} ms after | jobs accepted | succeeded | dead | lost | twice | acknowledged tasks present |"
    echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    awk -F '\t' 'NR > 1 {
      kinds = ""
      if ($4 != "none") {
        n = split($4, part, ", ")
        for (i = 1; i <= n; i++) { split(part[i], kv, " "); kinds = kinds (i > 1 ? ", " : "") kv[1] ": " kv[2] }
        kinds = " (" kinds ")"
      }
      split($11, lt, " "); split($12, tp, "/")
      back = ($7 < 0) ? "not before the load ended" : $7 " s"
      printf "| %s | %s | %s%s | %s s | %s s | %s | %s | %s | %s | %s | %s | %s of %s |\n", $1, $2, $3, kinds, $5, $6, back, $8, $9, $10, lt[1], lt[2], tp[1], tp[2]
    }' "$FIGURES"
    echo "<!-- faults:end -->"
  } >"$block"
  replace_generated_block "$FAULTS_DOC" faults "$block"
  log "figures written to $FAULTS_DOC"
fi
if ((${#FAILED_SCENARIOS[@]})); then
  printf '  %s\n' "${FAILED_SCENARIOS[@]}" >&2
  fail "${#FAILED_SCENARIOS[@]} scenario(s) broke a promise"
fi
