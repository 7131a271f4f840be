# The operator e2e suite (e2e/operator.sh, `make e2e`) on a cluster without nodes: KUBECONFIG, or a
# node-less k8s-lab of its own (e2e/lib.sh). Without either it says so and passes.
set -euo pipefail
source "$PERFSTACK_ROOT/e2e/lib.sh"
e2e_skip_unless played "operator e2e"
bash "$PERFSTACK_ROOT/e2e/operator.sh"
