# Faults under load on the k8s-lab's real node (e2e/faults.sh, `make e2e-faults`): the eight scenarios of
# docs/reliability.md, each under 40 requests/s of mixed load; a scenario fails when an acknowledged write
# or a job is lost, an effect happens twice, the connection budget breaks, or the stack does not recover
# within its bound. About 12 minutes after the node stage (which built the binaries and images it uses).
# Needs the k8s-lab itself; without it the stage says so and passes. FAULTS= picks scenarios.
set -euo pipefail
source "$PERFSTACK_ROOT/e2e/lib.sh"
e2e_skip_unless node "fault suite"
bash "$PERFSTACK_ROOT/e2e/faults.sh"
