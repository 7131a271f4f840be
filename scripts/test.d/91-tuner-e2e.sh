# The tuner e2e (e2e/tuner.sh, `make e2e-tuner`) on a cluster without nodes (scripted /metrics stubs at
# loopback pod IPs). Without a cluster or k8s-lab it says so and passes.
set -euo pipefail
source "$PERFSTACK_ROOT/e2e/lib.sh"
e2e_skip_unless played "tuner e2e"
cargo build -q -p perfstack-operator --bin perfstack-operator
bash "$PERFSTACK_ROOT/e2e/tuner.sh"
