#!/usr/bin/env bash
# e2e for the Helm chart against a real API server with no node (e2e/lib.sh: KUBECONFIG, or a node-less k8s-lab):
#  1. installs the chart twice: namespaced (watchNamespaces = one test namespace, 2 replicas) and
#     cluster-wide (defaults), with `helm install`, so Helm's real capability detection is exercised;
#  2. proves the ServiceAccount's rights with SubjectAccessReviews: every right the operator needs is
#     granted where it should be, and nothing beyond (no Secrets in other namespaces, no Leases outside the
#     lease namespace, nothing cluster-wide in namespaced mode);
#  3. when the operator core is in this tree (crds/ and `perfstack-operator run`), runs the operator binary
#     locally with the chart's own ServiceAccount token, applies examples/minimal.yaml in the watched
#     namespace, and asserts the stack's children appear, its status is written, a Lease is held, nothing
#     was forbidden, and deletion goes through the finalizer.
# Everything it creates lives in namespaces named pschart-*-<random> and is removed on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PERFSTACK_ROOT"
e2e_init played
set +e # from here on, failures are counted and reported, and cleanup always runs
set -uo pipefail

CHART=charts/perfstack-operator
suffix=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
SYS=pschart-sys-$suffix       # operator, namespaced install
WATCH=pschart-watch-$suffix   # the one namespace it watches
OTHER=pschart-other-$suffix   # a namespace it must not touch
CSYS=pschart-csys-$suffix     # operator, cluster-wide install
REL=pschart-$suffix
CREL=pschart-c-$suffix
SA=$REL-perfstack-operator
CSA=$CREL-perfstack-operator
work=$(mktemp -d)
operator_pid=

passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); log "FAIL: $*"; }

cleanup() {
  if [[ -n $operator_pid ]] && kill -0 "$operator_pid" 2>/dev/null; then
    kill -TERM "$operator_pid"; wait "$operator_pid" 2>/dev/null
  fi
  delete_stacks "$WATCH"
  helm uninstall "$REL" -n "$SYS" >/dev/null 2>&1
  helm uninstall "$CREL" -n "$CSYS" >/dev/null 2>&1
  kubectl delete ns "$SYS" "$WATCH" "$OTHER" "$CSYS" --wait=false >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# can WHO NAMESPACE|--all-namespaces VERB RESOURCE[.GROUP] [SUBRESOURCE] -> yes/no, from a
# SubjectAccessReview (exact, and unlike `kubectl auth can-i` independent of discovery, so it works
# before the CRD exists). WHO is a ServiceAccount, with the groups the API server gives its tokens.
can() {
  local who=$1 ns=$2 verb=$3 resource=${4%%.*} sub=${5:-} group='' sa_ns allowed
  [[ $4 == *.* ]] && group=${4#*.}
  [[ $ns == --all-namespaces ]] && ns=
  sa_ns=$(cut -d: -f3 <<<"$who")
  allowed=$(kubectl create -o jsonpath='{.status.allowed}' -f - 2>/dev/null <<EOF
apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: "$who"
  groups: [system:serviceaccounts, "system:serviceaccounts:$sa_ns", system:authenticated]
  resourceAttributes: {namespace: "$ns", verb: "$verb", group: "$group", resource: "$resource", subresource: "$sub"}
EOF
)
  [[ $allowed == true ]] && echo yes || echo no
}
expect_can() { # expect_can yes|no WHO NS VERB RESOURCE [SUB]
  local want=$1; shift
  local got; got=$(can "$@")
  if [[ $got == "$want" ]]; then ok; else ko "can-i $* = ${got:-error}, want $want"; fi
}

# The operator's rights (the RBAC list from the operator core), as resource[.group][/subresource] verbs.
NEEDED=(
  "performancestacks.perfstack.dev get,list,watch,patch,update"
  "performancestacks.perfstack.dev/status get,patch,update"
  "performancestacks.perfstack.dev/finalizers update"
  "secrets get,list,watch,create,patch,delete"
  "configmaps get,list,watch,create,patch,delete"
  "services get,list,watch,create,patch,delete"
  "persistentvolumeclaims get,list,watch,patch,delete"
  "pods get,list,watch"
  "pods/proxy get"
  "statefulsets.apps get,list,watch,create,patch,delete"
  "deployments.apps get,list,watch,create,patch,delete"
  "jobs.batch get,list,watch,create,patch,delete"
  "horizontalpodautoscalers.autoscaling get,list,watch,create,patch,delete"
  "events.events.k8s.io create,patch"
  "podmonitors.monitoring.coreos.com get,create,patch,delete"
  "prometheusrules.monitoring.coreos.com get,create,patch,delete"
)
# Rights it must not have, even in a namespace it watches.
NOT_NEEDED=(
  "secrets update" "deployments.apps update" "pods delete" "pods/exec create" "persistentvolumeclaims create"
  "performancestacks.perfstack.dev delete" "performancestacks.perfstack.dev create" "roles.rbac.authorization.k8s.io create"
  "leases.coordination.k8s.io get" "serviceaccounts/token create"
)

check_rights() { # check_rights WHO NS : everything in NEEDED yes, everything in NOT_NEEDED no
  local who=$1 ns=$2 line res sub verb
  for line in "${NEEDED[@]}"; do
    res=${line%% *}; sub=
    [[ $res == */* ]] && { sub=${res#*/}; res=${res%%/*}; }
    for verb in $(tr , ' ' <<<"${line#* }"); do expect_can yes "$who" "$ns" "$verb" "$res" "$sub"; done
  done
  for line in "${NOT_NEEDED[@]}"; do
    res=${line%% *}; sub=
    [[ $res == */* ]] && { sub=${res#*/}; res=${res%%/*}; }
    expect_can no "$who" "$ns" "${line#* }" "$res" "$sub"
  done
}

log "e2e-chart: namespaces $SYS, $WATCH, $OTHER, $CSYS"
kubectl create ns "$WATCH" >/dev/null && kubectl create ns "$OTHER" >/dev/null || ko "create namespaces"

# The CRD first, client-side, and helm --skip-crds: a server older than 1.25 refuses the CRD's
# x-kubernetes-validations under server-side apply, which Helm 4 uses for crds/ even when the CRD
# exists; a plain create/update drops them there. (The chart's crds/ is checked offline by 40-chart.)
if compgen -G 'crds/*.yaml' >/dev/null; then
  kubectl apply --validate=false -f crds/ >/dev/null && ok || ko "apply crds/"
fi

# 1. Install, namespaced. No --wait: on the lab no pod ever runs.
if helm install "$REL" "$CHART" -n "$SYS" --create-namespace --skip-crds \
  --set-json "watchNamespaces=[\"$WATCH\"]" --set replicaCount=2 >"$work/install.log" 2>&1; then ok; else
  ko "helm install (namespaced)"; cat "$work/install.log" >&2
fi
for obj in "deployment/$SA" "serviceaccount/$SA" "service/$SA-metrics" "poddisruptionbudget/$SA" \
  "role/$SA-leader-election" "rolebinding/$SA-leader-election"; do
  kubectl get -n "$SYS" "$obj" >/dev/null 2>&1 && ok || ko "$obj missing in $SYS"
done
kubectl get -n "$WATCH" "role/$SA" "rolebinding/$SA" >/dev/null 2>&1 && ok || ko "Role/RoleBinding missing in $WATCH"
kubectl get "clusterrole/$SA" >/dev/null 2>&1 && ko "namespaced install created ClusterRole $SA" || ok
# Helm saw what the server serves: policy/v1 PDBs where they exist, policy/v1beta1 on 1.20.
want_pdb=policy/v1beta1
kubectl api-versions | grep -qx policy/v1 && want_pdb=policy/v1
helm get manifest "$REL" -n "$SYS" | grep -qx "apiVersion: $want_pdb" && ok || ko "PDB is not $want_pdb"
args=$(kubectl get -n "$SYS" "deployment/$SA" -o jsonpath='{.spec.template.spec.containers[0].args}')
[[ $args == *"--namespaces=$WATCH"* && $args == *--leader-election* ]] && ok || ko "operator args: $args"

# 2. Rights, namespaced: all it needs in WATCH, nothing in OTHER, nothing cluster-wide, Leases only in SYS.
who=system:serviceaccount:$SYS:$SA
check_rights "$who" "$WATCH"
for res in secrets configmaps performancestacks.perfstack.dev deployments.apps; do
  expect_can no "$who" "$OTHER" get "$res"
  expect_can no "$who" --all-namespaces list "$res"
done
expect_can no "$who" "$SYS" get secrets
for verb in get list watch create update patch; do expect_can yes "$who" "$SYS" "$verb" leases.coordination.k8s.io; done
expect_can no "$who" "$SYS" delete leases.coordination.k8s.io
expect_can no "$who" "$WATCH" update leases.coordination.k8s.io
expect_can no "$who" --all-namespaces list nodes

# 1'/2'. Install cluster-wide (defaults): the same rights in any namespace, Leases still only at home.
if helm install "$CREL" "$CHART" -n "$CSYS" --create-namespace --skip-crds >"$work/cinstall.log" 2>&1; then ok; else
  ko "helm install (cluster-wide)"; cat "$work/cinstall.log" >&2
fi
cwho=system:serviceaccount:$CSYS:$CSA
check_rights "$cwho" "$OTHER"
expect_can yes "$cwho" --all-namespaces list secrets
expect_can yes "$cwho" "$CSYS" update leases.coordination.k8s.io
expect_can no "$cwho" "$OTHER" update leases.coordination.k8s.io
expect_can no "$cwho" --all-namespaces list nodes
expect_can no "$cwho" --all-namespaces create clusterroles.rbac.authorization.k8s.io

# Upgrade in place, then uninstall: nothing cluster-wide may be left behind.
if helm upgrade "$REL" "$CHART" -n "$SYS" --reuse-values --set replicaCount=1 >"$work/upgrade.log" 2>&1 \
  && [[ $(kubectl get -n "$SYS" "deployment/$SA" -o jsonpath='{.spec.replicas}') == 1 ]]; then ok; else
  ko "helm upgrade (namespaced)"; cat "$work/upgrade.log" >&2
fi
if helm uninstall "$CREL" -n "$CSYS" >"$work/uninstall.log" 2>&1; then ok; else ko "helm uninstall"; cat "$work/uninstall.log" >&2; fi
for obj in "clusterrole/$CSA" "clusterrolebinding/$CSA" "clusterrole/$CSA-edit" "clusterrole/$CSA-view"; do
  kubectl get "$obj" >/dev/null 2>&1 && ko "$obj left after uninstall" || ok
done

# 3. The operator itself, with the chart's ServiceAccount token and nothing else.
run_operator_checks() {
  local bin=$OPERATOR_BIN port stack deadline probe
  sa_kubeconfig "$SYS" "$SA" >"$work/sa.kubeconfig" || { ko "ServiceAccount kubeconfig"; return; }
  port=$(free_port)
  KUBECONFIG=$work/sa.kubeconfig POD_NAME=e2e-chart-0 POD_NAMESPACE=$SYS "$bin" run \
    --namespaces "$WATCH" --leader-election --lease-name "$SA" --lease-namespace "$SYS" \
    --metrics-addr "127.0.0.1:$port" --log-format json >"$work/operator.log" 2>&1 &
  operator_pid=$!
  kubectl apply -n "$WATCH" -f examples/minimal.yaml >/dev/null || { ko "apply examples/minimal.yaml"; return; }
  stack=$(kubectl get performancestacks.perfstack.dev -n "$WATCH" -o jsonpath='{.items[0].metadata.name}')
  # The credentials Secret holds the database's password: it is never owned by the stack (no garbage
  # collection may delete it), the other children are.
  local kinds=(configmaps services statefulsets.apps) missing
  deadline=$((SECONDS + 90))
  while :; do
    missing=()
    for k in "${kinds[@]}"; do
      kubectl get "$k" -n "$WATCH" -o jsonpath='{range .items[*]}{.metadata.ownerReferences[*].kind}{"\n"}{end}' \
        | grep -q PerformanceStack || missing+=("$k")
    done
    kubectl get secret -n "$WATCH" "$stack-credentials" >/dev/null 2>&1 || missing+=("secret/$stack-credentials")
    ((${#missing[@]} == 0)) && break
    ((SECONDS > deadline)) && break
    kill -0 "$operator_pid" 2>/dev/null || break
    sleep 2
  done
  if ((${#missing[@]} == 0)); then ok; else
    ko "no ${missing[*]} owned by stack $stack after 90 s"; tail -20 "$work/operator.log" >&2
  fi
  [[ $(kubectl get secret -n "$WATCH" "$stack-credentials" -o jsonpath='{.metadata.ownerReferences}' 2>/dev/null) == "" ]] \
    && ok || ko "secret/$stack-credentials is owned: garbage collection could delete it"
  [[ -n $(kubectl get performancestacks.perfstack.dev "$stack" -n "$WATCH" -o jsonpath='{.status.observedGeneration}') ]] \
    && ok || ko "stack status never written"
  [[ $(kubectl get lease "$SA" -n "$SYS" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null) == e2e-chart-0 ]] \
    && ok || ko "Lease $SYS/$SA not held by e2e-chart-0"
  # The chart's probes: both endpoints answer 200 on the metrics address (a standby must be ready too).
  for probe in healthz readyz; do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
      "http://127.0.0.1:$port/$probe" 2>/dev/null && ok || ko "/$probe did not answer 200"
  done
  if grep -qiE 'forbidden|"code":403| 403 ' "$work/operator.log"; then
    ko "the operator was refused something:"; grep -iE 'forbidden|403' "$work/operator.log" | head -5 >&2
  else ok; fi
  kubectl delete performancestacks.perfstack.dev "$stack" -n "$WATCH" --timeout=60s >/dev/null 2>&1 \
    && ok || ko "stack $stack not deleted within 60 s (finalizer not removed?)"
  kill -0 "$operator_pid" 2>/dev/null && ok || { ko "operator exited early:"; tail -20 "$work/operator.log" >&2; }
  kill -TERM "$operator_pid" 2>/dev/null; wait "$operator_pid" 2>/dev/null; operator_pid=
}

# PERFSTACK_OPERATOR_BIN: test a given operator binary (a release build, another checkout's) instead.
OPERATOR_BIN=${PERFSTACK_OPERATOR_BIN:-}
if [[ -z $OPERATOR_BIN ]] && compgen -G 'crds/*.yaml' >/dev/null; then
  cargo build -q -p perfstack-operator 2>"$work/build.log" || { ko "cargo build -p perfstack-operator"; cat "$work/build.log" >&2; }
  OPERATOR_BIN=${CARGO_TARGET_DIR:-target}/debug/perfstack-operator
fi
if compgen -G 'crds/*.yaml' >/dev/null && [[ -f examples/minimal.yaml && -x $OPERATOR_BIN ]] \
  && "$OPERATOR_BIN" run --help 2>/dev/null | grep -q -- --leader-election; then
  run_operator_checks
else
  log "e2e-chart: operator run SKIPPED: the operator core (crds/, examples/minimal.yaml, \`perfstack-operator run\`) is not in this tree yet; RBAC checked by SubjectAccessReview only"
fi

echo "e2e-chart: $passed passed, $failed failed"
((failed == 0))
