# The operator e2e suite (scripts/e2e.sh) when a cluster is at hand: KUBECONFIG, or the k8s-lab beside
# the repository (started if needed). Without either it says so and passes: the suite needs a real API
# server, which a developer's machine may not have.
set -euo pipefail
source "$PERFSTACK_ROOT/scripts/lib.sh"
lab=
for candidate in "${K8S_LAB:-}" "$PERFSTACK_ROOT/../shared/k8s-lab" "$PERFSTACK_ROOT/../../shared/k8s-lab"; do
  [[ -n $candidate && -x $candidate/up.sh ]] && { lab=$candidate; break; }
done
if [[ -z ${KUBECONFIG:-} && -z $lab ]]; then
  log "e2e SKIPPED: no KUBECONFIG and no k8s-lab (looked in \$K8S_LAB, ../shared/k8s-lab, ../../shared/k8s-lab); run \`make e2e\` against a cluster"
  exit 0
fi
K8S_LAB=$lab bash "$PERFSTACK_ROOT/scripts/e2e.sh"
