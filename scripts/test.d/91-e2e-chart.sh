# The Helm chart against a real API server without nodes (e2e/chart.sh, `make e2e-chart`): install,
# RBAC proven by SubjectAccessReviews, and the operator run with the chart's ServiceAccount token.
# Without a cluster or k8s-lab it says so and passes.
set -euo pipefail
source "$PERFSTACK_ROOT/e2e/lib.sh"
e2e_skip_unless played "chart e2e"
bash "$PERFSTACK_ROOT/e2e/chart.sh"
