# The whole stack on the k8s-lab's real node (e2e/node.sh, `make e2e-node`): release binaries, images
# from the Dockerfiles, the operator from the Helm chart, real pods, traffic, the tuner on live metrics,
# day-two paths. make test runs the short suite (NODE_SUITE=short: without the tuner's load step and the
# rollout under load, minutes of load each); `make e2e-node` runs all of it. Needs the k8s-lab itself (its node runs the images image.sh and podman build here);
# without it the stage says so and passes. The first run on a machine builds the node (~15 min).
set -euo pipefail
source "$PERFSTACK_ROOT/e2e/lib.sh"
e2e_skip_unless node "node e2e"
NODE_SUITE=short bash "$PERFSTACK_ROOT/e2e/node.sh"
