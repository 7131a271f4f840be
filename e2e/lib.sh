# Shared by every e2e suite (e2e/*.sh): which cluster, checks, waiting, the operator process, cleanup.
# Source it; it defines functions only (and sources scripts/lib.sh).
#
# Two kinds of suites, two labs, so that they never meet (docs/architecture.md, "Tests"):
# - "played" suites (operator.sh, tuner.sh, chart.sh, the operator bench) play the kubelet: they set pod
#   statuses themselves. A real kubelet would overwrite those statuses, so they run on a control plane
#   WITHOUT a node: the k8s-lab started in its own folder and ports (PLAYED_LAB_DIR), whatever state
#   the main lab is in. With KUBECONFIG set they use that cluster, and refuse one that has nodes.
# - "node" suites (node.sh, faults.sh) need pods that really run: the k8s-lab in its default folder
#   with its node (`K8S_LAB_NODE=1 up.sh`), images from the lab's image.sh. They need the lab itself
#   (the images exist only in its node's store) and skip, saying so, without it.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

E2E_WORK=$PERFSTACK_ROOT/e2e/.work
# The played suites' control plane: its own folder and ports beside the node lab's defaults.
PLAYED_LAB_DIR=${PERFSTACK_PLAYED_LAB_DIR:-/tmp/perfstack-played-lab}
PLAYED_LAB_API_PORT=${PERFSTACK_PLAYED_LAB_API_PORT:-17443}
PLAYED_LAB_ETCD_PORT=${PERFSTACK_PLAYED_LAB_ETCD_PORT:-24790}

# lab_env KIND : the environment the lab's scripts take for the played or the node lab.
lab_env() {
  case $1 in
    played) echo "K8S_LAB_DIR=$PLAYED_LAB_DIR K8S_LAB_API_PORT=$PLAYED_LAB_API_PORT K8S_LAB_ETCD_PORT=$PLAYED_LAB_ETCD_PORT" ;;
    node) echo "K8S_LAB_DIR=${K8S_LAB_DIR:-/tmp/k8s-lab} K8S_LAB_NODE=1" ;;
  esac
}

# lab_run KIND SCRIPT [ARGS...] : runs one of the lab's scripts for that lab.
lab_run() {
  local kind=$1 script=$2 lab
  shift 2
  lab=$(k8s_lab_dir) || die "no k8s-lab"
  env $(lab_env "$kind") "$lab/$script" "$@"
}

# e2e_skip_unless KIND WHAT : exits 0 with a plain message when the suite cannot run here (no cluster
# for a played suite; no k8s-lab for a node suite).
e2e_skip_unless() {
  local kind=$1 what=$2
  if [[ $kind == played ]]; then
    [[ -n ${KUBECONFIG:-} ]] && return 0
    k8s_lab_dir >/dev/null && return 0
    log "$what SKIPPED: no KUBECONFIG and no k8s-lab (looked in \$K8S_LAB, ../shared/k8s-lab, ../../shared/k8s-lab)"
  else
    k8s_lab_dir >/dev/null && return 0
    log "$what SKIPPED: it needs the k8s-lab with a node (its images are built into the lab's node by image.sh);" \
      "none found in \$K8S_LAB, ../shared/k8s-lab, ../../shared/k8s-lab"
  fi
  exit 0
}

# e2e_init KIND : tools first on PATH (kubectl 1.33 and helm from scripts/tools.sh: the checks use
# `--subresource=status`, and the lab's sa-kubeconfig.sh `kubectl create token`, which Debian's 1.20
# client lacks), then the cluster of that kind, exported as KUBECONFIG. Sets LAB (the lab's folder when
# the cluster is a lab, else empty), WORK, and installs jq and curl when missing.
e2e_init() {
  local kind=$1
  source "$PERFSTACK_ROOT/scripts/tools.sh"
  command -v jq >/dev/null || apt_install jq
  command -v curl >/dev/null || apt_install curl
  LAB=
  if [[ $kind == node ]]; then
    LAB=$(k8s_lab_dir) || die "no k8s-lab"
    log "starting/using the k8s-lab with its node ($(lab_env node))"
    eval "$(lab_run node up.sh | tail -n 1)"
  elif [[ -n ${KUBECONFIG:-} ]]; then
    log "using the cluster in KUBECONFIG=$KUBECONFIG"
    [[ -z $(kubectl get nodes -o name 2>/dev/null) ]] ||
      die "this suite plays the kubelet and needs a cluster without nodes (a kubelet would overwrite the pod statuses it sets); unset KUBECONFIG to use the k8s-lab"
  else
    LAB=$(k8s_lab_dir) || die "no KUBECONFIG and no k8s-lab"
    log "starting/using a node-less k8s-lab for the suites that play the kubelet ($(lab_env played))"
    eval "$(lab_run played up.sh | tail -n 1)"
  fi
  export KUBECONFIG LAB_KIND=$kind
  kubectl version >/dev/null 2>&1 || die "the cluster in $KUBECONFIG does not answer"
  WORK=$E2E_WORK
  mkdir -p "$WORK"
}

# sa_kubeconfig NAMESPACE SERVICEACCOUNT : prints a kubeconfig acting as that ServiceAccount (the lab's
# own script for a lab, a TokenRequest for another cluster).
sa_kubeconfig() {
  local ns=$1 sa=$2 token server ca
  if [[ -n ${LAB:-} ]]; then
    lab_run "$LAB_KIND" sa-kubeconfig.sh "$ns" "$sa"
    return
  fi
  token=$(kubectl create token "$sa" -n "$ns" --duration=1h) || return 1
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: $sa
  user: {token: "$token"}
contexts:
- name: c
  context: {cluster: c, user: $sa, namespace: $ns}
current-context: c
EOF
}

fail() { die "check failed: $*"; }
pass() { log "ok: $*"; }
K() { kubectl "$@"; }

# wait_for SECONDS DESCRIPTION COMMAND... : retries COMMAND every second; fails the suite on timeout.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for: $what"
    sleep 1
  done
}

# free_port : a TCP port nothing listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# install_crds : the CRD, client-side without validation (servers before 1.25 refuse its
# x-kubernetes-validations under server-side apply), and waits until it is served.
install_crds() {
  K apply --validate=false -f "$PERFSTACK_ROOT/crds/" >/dev/null
  wait_for 30 "CRD established" K wait --for condition=established --timeout=1s crd/performancestacks.perfstack.dev
}

# operator_process BIN LOG PORT POD_NAME [run flags...] : starts `perfstack-operator run` in the
# background with its metrics on 127.0.0.1:PORT, waits for /readyz, and sets OPERATOR_PID. The
# kubeconfig it uses is OPERATOR_KUBECONFIG when set, else KUBECONFIG.
operator_process() {
  local bin=$1 logfile=$2 port=$3 pod=$4
  shift 4
  KUBECONFIG=${OPERATOR_KUBECONFIG:-$KUBECONFIG} POD_NAME=$pod "$bin" run --metrics-addr "127.0.0.1:$port" \
    --log-format json "$@" >>"$logfile" 2>&1 &
  OPERATOR_PID=$!
  wait_for 30 "operator /readyz" curl -fsS "http://127.0.0.1:$port/readyz"
}

# stop_process PID : SIGTERM, then waits for it. Its exit status (143 for a process SIGTERM ended)
# is not the caller's: under `set -e` a failed `wait` would end the suite from its cleanup.
stop_process() {
  [[ -n ${1:-} ]] || return 0
  kill "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
}

# delete_stacks NAMESPACE... : deletes every PerformanceStack there and waits up to 30 s for the
# operator's finalizer to let them go; strips the finalizer of what is left (an operator that is no
# longer running), so an e2e run leaves no namespace stuck in Terminating. Call it before stopping
# the operator.
delete_stacks() {
  local ns stack left deadline=$((SECONDS + 30))
  for ns in "$@"; do K delete pstack --all -n "$ns" --wait=false >/dev/null 2>&1 || true; done
  while ((SECONDS < deadline)); do
    left=
    for ns in "$@"; do left+=$(K get pstack -n "$ns" -o name 2>/dev/null || true); done
    [[ -z $left ]] && return 0
    sleep 1
  done
  for ns in "$@"; do
    for stack in $(K get pstack -n "$ns" -o name 2>/dev/null); do
      K patch -n "$ns" "$stack" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    done
  done
}

# stack_json NS NAME ; condition NS NAME TYPE [FIELD] : a stack, and one field of one of its conditions.
stack_json() { K get pstack -n "$1" "$2" -o json; }
condition() { stack_json "$1" "$2" | jq -r --arg t "$3" '.status.conditions[]? | select(.type==$t) | .'"${4:-status}"; }

# mark_pod_running NS POD IP : sets a pod Running and Ready at IP, as a kubelet would (played suites only).
mark_pod_running() {
  local now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  K patch pod -n "$1" "$2" --subresource=status --type=merge -p "$(jq -cn --arg now "$now" --arg ip "$3" '{status:{phase:"Running",
    podIP:$ip,conditions:[{type:"Initialized",status:"True",lastTransitionTime:$now},
    {type:"PodScheduled",status:"True",lastTransitionTime:$now},{type:"ContainersReady",status:"True",lastTransitionTime:$now},
    {type:"Ready",status:"True",lastTransitionTime:$now}]}}')" >/dev/null
}

# operator_writes PORT : requests the operator serving metrics on 127.0.0.1:PORT has sent that change
# the cluster (create, update, patch, delete), its Lease renewals left out.
operator_writes() {
  local metrics
  metrics=$(curl -fsS "http://127.0.0.1:$1/metrics") || return 1
  awk '/^perfstack_operator_kube_requests_total\{/ && /verb="(create|update|patch|delete|deletecollection)"/ &&
    !/resource="leases"/ {n += $NF} END {print n + 0}' <<<"$metrics"
}

# operator_reconciles PORT : reconciles the operator serving metrics on 127.0.0.1:PORT has started.
operator_reconciles() {
  local metrics
  metrics=$(curl -fsS "http://127.0.0.1:$1/metrics") || return 1
  awk '/^perfstack_operator_reconciles_total / {print $2}' <<<"$metrics"
}
