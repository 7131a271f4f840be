# The tuner e2e (e2e/tuner.sh) when a cluster is at hand: KUBECONFIG, or the k8s-lab beside the
# repository. Without either it says so and passes (the suite needs a real API server).
set -euo pipefail
source "$PERFSTACK_ROOT/scripts/lib.sh"
lab=
for candidate in "${K8S_LAB:-}" "$PERFSTACK_ROOT/../shared/k8s-lab" "$PERFSTACK_ROOT/../../shared/k8s-lab"; do
  [[ -n $candidate && -x $candidate/up.sh ]] && { lab=$candidate; break; }
done
if [[ -z ${KUBECONFIG:-} && -z $lab ]]; then
  log "tuner e2e SKIPPED: no KUBECONFIG and no k8s-lab (looked in \$K8S_LAB, ../shared/k8s-lab, ../../shared/k8s-lab)"
  exit 0
fi
cargo build -q -p perfstack-operator --bin perfstack-operator
K8S_LAB=$lab bash "$PERFSTACK_ROOT/e2e/tuner.sh"
