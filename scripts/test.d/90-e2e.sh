# The operator e2e suite (scripts/e2e.sh) when a cluster is at hand: KUBECONFIG, or the k8s-lab beside
# the repository (started if needed). Without either it says so and passes: the suite needs a real API
# server, which a developer's machine may not have.
set -euo pipefail
source "$PERFSTACK_ROOT/scripts/lib.sh"
e2e_skip_without_cluster "e2e"
bash "$PERFSTACK_ROOT/scripts/e2e.sh"
