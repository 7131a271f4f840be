# Shared by the suites that run the stack on the k8s-lab's real node (e2e/node.sh, e2e/faults.sh):
# release binaries, images from the project's Dockerfiles, the operator installed with the Helm chart,
# a stack, and ways to reach its API. Source it after e2e/lib.sh.

VERSION=$(awk -F'"' '/^\[workspace.package\]/ {p=1} p && /^version/ {print $2; exit}' "$PERFSTACK_ROOT/Cargo.toml")
# One registry and one naming rule for both images: the chart's default, the operator's default API
# image and `make images` (scripts/images.sh) all use it.
IMAGE_REGISTRY=ghcr.io/perfstack
APP_IMAGE=$IMAGE_REGISTRY/perfstack-app:$VERSION
OPERATOR_IMAGE=$IMAGE_REGISTRY/perfstack-operator:$VERSION
# A second tag of the same binary, for a rollout that changes nothing but the image.
APP_IMAGE_NEXT=$IMAGE_REGISTRY/perfstack-app:$VERSION-next
RELEASE_DIR=${CARGO_TARGET_DIR:-$PERFSTACK_ROOT/target}/release
# Which builder made the images the suite runs (podman from the Dockerfiles, or the lab's image.sh).
IMAGE_BUILDER=

# ms_since EPOCHREALTIME : milliseconds elapsed since that moment.
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# step NAME : starts a timed step; `pass` then reports how long it took (the suite's log lists every
# check with its timing).
STEP_START=$EPOCHREALTIME
step() { STEP_START=$EPOCHREALTIME; log "-- $*"; }
pass() { log "ok ($(awk -v ms="$(ms_since "$STEP_START")" 'BEGIN { printf "%.1f", ms / 1000 }') s): $*"; STEP_START=$EPOCHREALTIME; }

# figure NAME VALUE : records a figure for the suite's summary (and docs/install.md).
figure() {
  printf '%s\t%s\n' "$1" "$2" >>"$WORK/$SUITE-figures.tsv"
  log "figure: $1 = $2"
}

# build_release : the API and operator binaries, release profile.
build_release() {
  log "building the release binaries (perfstack-app, perfstack-operator)"
  cargo build -q --release -p perfstack-app -p perfstack-operator --bin perfstack-app --bin perfstack-operator
}

PODMAN=(podman --storage-driver vfs --cgroup-manager cgroupfs --events-backend file)

# podman_usable : podman from Debian installed and able to build here.
podman_usable() {
  [[ -n ${PERFSTACK_E2E_NO_PODMAN:-} ]] && return 1
  command -v podman >/dev/null || apt_install podman >/dev/null 2>&1 || return 1
  "${PODMAN[@]}" info >/dev/null 2>&1
}

# dockerfile_image DOCKERFILE BINARY NAME... : builds the Dockerfile's `prebuilt` target with podman on
# the lab's Debian base (no registry here: BUILD_IMAGE is never pulled, RUNTIME_IMAGE is local) and
# imports it into the node under each NAME.
dockerfile_image() {
  local dockerfile=$1 binary=$2 name ctx
  shift 2
  ctx=$(mktemp -d)
  cp "$binary" "$ctx/"
  "${PODMAN[@]}" build -q --target prebuilt --build-arg RUNTIME_IMAGE=localhost/perfstack/runtime-base:lab \
    --build-arg "VERSION=$VERSION" -f "$dockerfile" -t "$1" "$ctx" >/dev/null
  for name in "$@"; do
    [[ $name == "$1" ]] || "${PODMAN[@]}" tag "$1" "$name"
    "${PODMAN[@]}" save -q --format docker-archive -o "$ctx/image.tar" "$name"
    lab_run node image.sh import "$ctx/image.tar" >/dev/null
    rm -f "$ctx/image.tar"
  done
  rm -rf "$ctx"
  # The node has them now. podman's vfs store keeps full copies of every layer: left there, each run
  # would cost a few hundred MB more disk, and a node short of disk taints itself (disk-pressure) and
  # schedules nothing.
  "${PODMAN[@]}" rmi -f "$@" >/dev/null 2>&1 || true
}

# build_images : PostgreSQL and Redis stand-ins (the operator's default image names), and the operator
# and API images under the names the chart and the operator use. From the project's Dockerfiles with
# podman when it works here, else wrapped by the lab's image.sh; IMAGE_BUILDER says which.
build_images() {
  # The node's own images first: a kubelet that ran short of disk garbage-collects unused images, the
  # sandbox image included, and then creates no pod at all (image.sh imports what the node lacks).
  lab_run node image.sh pause >/dev/null
  lab_run node image.sh toolbox >/dev/null
  lab_run node image.sh postgres >/dev/null
  lab_run node image.sh redis >/dev/null
  if podman_usable; then
    # The lab's minimal Debian base (glibc, CA certificates, tzdata, user 65532; the layer image.sh
    # wraps binaries in) stands in for distroless: image.sh makes it once, podman imports it.
    lab_run node image.sh binary localhost/perfstack/runtime-base:lab /bin/true >/dev/null 2>&1
    local base
    base=$(ls -t "${K8S_LAB_CACHE:-$HOME/.cache/k8s-lab}"/images/binary-base-*.layer 2>/dev/null | head -1)
    [[ -f $base ]] || die "the k8s-lab's base layer for binary images is missing"
    "${PODMAN[@]}" import -q "$base" localhost/perfstack/runtime-base:lab >/dev/null
    dockerfile_image operator/Dockerfile "$RELEASE_DIR/perfstack-operator" "$OPERATOR_IMAGE"
    dockerfile_image app/Dockerfile "$RELEASE_DIR/perfstack-app" "$APP_IMAGE" "$APP_IMAGE_NEXT"
    IMAGE_BUILDER="podman $("${PODMAN[@]}" version --format '{{.Client.Version}}') from app/Dockerfile and operator/Dockerfile (target prebuilt)"
    "${PODMAN[@]}" image prune -f >/dev/null 2>&1 || true
  else
    lab_run node image.sh binary "$OPERATOR_IMAGE" "$RELEASE_DIR/perfstack-operator" >/dev/null
    lab_run node image.sh binary "$APP_IMAGE" "$RELEASE_DIR/perfstack-app" >/dev/null
    lab_run node image.sh binary "$APP_IMAGE_NEXT" "$RELEASE_DIR/perfstack-app" >/dev/null
    IMAGE_BUILDER="the k8s-lab's image.sh (podman not usable here: set PERFSTACK_E2E_NO_PODMAN= and check 'podman info')"
  fi
  log "images: $IMAGE_BUILDER"
}

# install_operator RELEASE NAMESPACE WATCHED [helm flags...] : the chart, as a platform team installs
# it (its Deployment, ServiceAccount and RBAC, leader election on), watching one namespace; waits until
# one replica holds the Lease.
install_operator() {
  local release=$1 ns=$2 watched=$3
  shift 3
  helm install "$release" "$PERFSTACK_ROOT/charts/perfstack-operator" -n "$ns" --skip-crds \
    --set-json "watchNamespaces=[\"$watched\"]" --set "image.tag=$VERSION" "$@" >/dev/null
  K rollout status -n "$ns" "deployment/$release-perfstack-operator" --timeout=180s >/dev/null ||
    fail "the operator Deployment did not become available"
  lease_held() { [[ -n $(K get lease -n "$ns" "$release-perfstack-operator" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null) ]]; }
  wait_for 60 "an operator pod to take the Lease" lease_held
}

# api_pod_ips NS STACK : the Ready API pods' IPs, one per line.
api_pod_ips() {
  K get pods -n "$1" -l "perfstack.dev/stack=$2,app.kubernetes.io/component=api" -o json |
    jq -r '.items[] | select(.metadata.deletionTimestamp == null)
      | select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) | .status.podIP'
}

# service_url NS STACK : the API Service's ClusterIP URL (the node reaches it through kube-proxy).
service_url() {
  echo "http://$(K get service -n "$1" "$2-api" -o jsonpath='{.spec.clusterIP}'):$(K get service -n "$1" "$2-api" -o jsonpath='{.spec.ports[0].port}')"
}

# metric URL NAME : one unlabelled sample of a pod's /metrics.
# (The body is read whole first: awk leaving early would make curl fail under pipefail.)
metric() {
  local body
  body=$(curl -fsS --max-time 5 "$1/metrics") || return 1
  awk -v n="$2" '$1 == n { print $2; exit }' <<<"$body"
}

# seed_stack NS STACK USERS PROJECTS TASKS : `perfstack-app seed` as a Job with the stack's database
# credentials (a demo dataset for the load tester), waits for it.
seed_stack() {
  local ns=$1 stack=$2
  K apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: $stack-seed}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
      - name: seed
        image: $APP_IMAGE
        args: [seed, --users, "$3", --projects, "$4", --tasks, "$5"]
        env:
        - name: DATABASE_URL
          valueFrom: {secretKeyRef: {name: $stack-credentials, key: database-url}}
EOF
  K wait -n "$ns" --for=condition=complete "job/$stack-seed" --timeout=300s >/dev/null ||
    fail "the seed Job did not complete: $(K logs -n "$ns" "job/$stack-seed" --tail=5 2>&1)"
}

# clear_leftovers : removes what an interrupted earlier run of a node suite left on the lab (namespaces
# labelled perfstack.dev/e2e=node: their stacks, Helm releases and the namespaces), so that the node's
# capacity is this run's.
clear_leftovers() {
  local ns release
  for ns in $(K get namespaces -l perfstack.dev/e2e=node -o jsonpath='{.items[*].metadata.name}'); do
    log "removing $ns, left by an earlier run"
    for release in $(helm list -n "$ns" -q 2>/dev/null); do helm uninstall "$release" -n "$ns" >/dev/null 2>&1 || true; done
    for stack in $(K get pstack -n "$ns" -o name 2>/dev/null); do
      K patch -n "$ns" "$stack" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    done
    K delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  done
}

# e2e_namespace NAME : creates a namespace marked as this kind of suite's (see clear_leftovers).
e2e_namespace() {
  K create namespace "$1" >/dev/null
  K label namespace "$1" perfstack.dev/e2e=node >/dev/null
}

# node_preflight : the lab's kubelet taints its node (disk-pressure) and schedules nothing once less
# than 1 % of the disk is free: say so plainly instead of timing out on Pending pods. A taint from an
# earlier shortage stays 5 minutes after it ended (the kubelet's transition period): wait it out.
node_preflight() {
  local free_kb total_kb
  free_kb=$(df -Pk "${K8S_LAB_DIR:-/tmp}" | awk 'NR == 2 {print $4}')
  total_kb=$(df -Pk "${K8S_LAB_DIR:-/tmp}" | awk 'NR == 2 {print $2}')
  ((free_kb * 100 / total_kb >= 3)) ||
    die "only $((free_kb / 1024)) MiB of $((total_kb / 1048576)) GiB free on the lab's disk: the node would taint itself (disk-pressure, under 1 %) during the suite"
  untainted() { [[ $(K get nodes -o jsonpath='{.items[*].spec.taints[*].key}') != *disk-pressure* ]]; }
  wait_for 360 "the node without a disk-pressure taint" untainted
}

# node_failure_report NS SYS : what a failed node suite prints: the node, the stack's namespace and
# the operator's, the last events of both, and the operator's log tail.
node_failure_report() {
  local ns=$1 sys=$2
  K get nodes -o wide >&2 2>/dev/null || true
  K get pstack,pods,jobs,pvc -n "$ns" -o wide >&2 2>/dev/null || true
  K get deploy,pods -n "$sys" -o wide >&2 2>/dev/null || true
  K get events -n "$sys" --sort-by=.lastTimestamp 2>/dev/null | tail -15 >&2 || true
  K get events -n "$ns" --sort-by=.lastTimestamp 2>/dev/null | tail -15 >&2 || true
  K logs -n "$sys" -l app.kubernetes.io/name=perfstack-operator --tail=30 --prefix >"$WORK/$SUITE-operator.log" 2>&1 || true
  K logs -n "$sys" -l app.kubernetes.io/name=perfstack-operator --tail=30 --prefix --previous >>"$WORK/$SUITE-operator.log" 2>/dev/null || true
  log "operator log tail ($WORK/$SUITE-operator.log):"
  tail -20 "$WORK/$SUITE-operator.log" >&2 || true
}

# node_cleanup WHAT : the EXIT trap of a node suite (call it first thing in the trap, so that it sees the
# suite's exit status): stops the suite's background load and sampler ($LOAD, $SAMPLER), prints the
# failure report when the suite failed, then removes its stacks, its Helm release ($REL) and its two
# namespaces ($NS, $SYS), and exits with the suite's status.
node_cleanup() {
  local rc=$? what=$1
  set +e
  service_range_guard off
  stop_process "${SAMPLER:-}"
  stop_process "${LOAD:-}"
  if ((rc != 0)); then
    log "$what FAILED; state of $NS and $SYS:"
    node_failure_report "$NS" "$SYS"
  fi
  delete_stacks "$NS"
  helm uninstall "$REL" -n "$SYS" >/dev/null 2>&1 || true
  K delete namespace "$NS" "$SYS" --wait=false >/dev/null 2>&1 || true
  exit $rc
}

# sample_budget FILE : every second, a line "time pool-sum max_connections": the sum of the pool maxima
# of stack $STACK's API pods in $NS (every pod with an IP, terminating ones included: their pools are
# still open) and the server's max_connections, as the pods' /metrics report them.
sample_budget() {
  while :; do
    local sum=0 max=0 ip v
    for ip in $(K get pods -n "$NS" -l "perfstack.dev/stack=$STACK,app.kubernetes.io/component=api" \
      -o jsonpath='{range .items[*]}{.status.podIP}{" "}{end}' 2>/dev/null); do
      v=$(metric "http://$ip:8080" perfstack_db_pool_max_connections 2>/dev/null) || continue
      [[ -n $v ]] && sum=$((sum + ${v%.*}))
      v=$(metric "http://$ip:8080" perfstack_db_server_max_connections 2>/dev/null) || true
      [[ -n $v ]] && max=${v%.*}
    done
    echo "$EPOCHREALTIME $sum $max" >>"$1"
    sleep 1
  done
}

# service_range_guard on|off : the suites' clients (curl, the load tester) run on the lab's host, which
# has a default route off the machine. A TCP connection to a ClusterIP that kube-proxy did not translate
# (the Service without ready endpoints at the moment of the SYN) would leave the machine, and whatever
# answers out there (here: a gateway that answers 404 to any HTTP request) would hold the client's
# keep-alive connection: a load tester then counts that gateway's 404s long after the stack is back. In
# a cluster such a connection goes nowhere. `on` refuses untranslated TCP to the Service range
# (SERVICE_RANGE, the lab's 10.96.0.0/16) with a reset, after kube-proxy's DNAT (filter OUTPUT sees
# translated packets with the pod's address); `off` removes that rule again (node_cleanup does).
service_range_guard() {
  local range=${SERVICE_RANGE:-10.96.0.0/16} rule
  rule=(OUTPUT -d "$range" -p tcp -m comment --comment "perfstack e2e: untranslated ClusterIP traffic" -j REJECT --reject-with tcp-reset)
  command -v iptables >/dev/null || return 0
  case $1 in
    on) iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}" ;;
    off) while iptables -D "${rule[@]}" 2>/dev/null; do :; done ;;
  esac
}

# node_suite_start PREFIX WHAT : the start every node suite shares. Names this run's namespaces and Helm
# release (NS=PREFIX-xxxxxxxx for the stacks, SYS=PREFIX-sys-xxxxxxxx and REL for the operator; STACK
# is the stack under test), sets node_cleanup as the EXIT trap (WHAT names the suite in its report),
# removes what an interrupted earlier run left, and checks the node can schedule.
node_suite_start() {
  local prefix=$1 what=$2
  SUFFIX=$(printf '%04x%04x' $RANDOM $RANDOM)
  NS=$prefix-$SUFFIX SYS=$prefix-sys-$SUFFIX REL=$prefix-$SUFFIX STACK=demo
  LOAD= SAMPLER=
  # shellcheck disable=SC2064 # WHAT is fixed now, on purpose
  trap "node_cleanup '$what'" EXIT
  clear_leftovers
  node_preflight
}
