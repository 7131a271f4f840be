# Faults on the k8s-lab's real node (e2e/faults.sh, `make e2e-faults`): eight scenarios, each under a
# steady load, each judged on what the load tester was promised (no acknowledged write or job lost,
# no effect twice, recovery within its bound); figures in e2e/.work/faults-figures.tsv and
# docs/reliability.md. Needs the k8s-lab itself, like the node stage; without it the stage says so and
# passes. make test runs every scenario with a shorter load (FAULT_LOAD_SECONDS=50) than make e2e-faults.
set -euo pipefail
source "$PERFSTACK_ROOT/e2e/lib.sh"
e2e_skip_unless node "fault e2e"
FAULT_LOAD_SECONDS=${FAULT_LOAD_SECONDS:-50} FAULT_AT_SECONDS=${FAULT_AT_SECONDS:-10} bash "$PERFSTACK_ROOT/e2e/faults.sh"
