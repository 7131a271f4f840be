# The tuner e2e (e2e/tuner.sh) when a cluster is at hand: KUBECONFIG, or the k8s-lab beside the
# repository. Without either it says so and passes (the suite needs a real API server).
set -euo pipefail
source "$PERFSTACK_ROOT/scripts/lib.sh"
e2e_skip_without_cluster "tuner e2e"
cargo build -q -p perfstack-operator --bin perfstack-operator
bash "$PERFSTACK_ROOT/e2e/tuner.sh"
