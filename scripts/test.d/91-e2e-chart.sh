# The Helm chart against a real API server (KUBECONFIG, else ../shared/k8s-lab): install, RBAC proven by
# SubjectAccessReviews, and the operator run with the chart's ServiceAccount token. Says plainly when it
# is skipped (no cluster). `make e2e-chart` runs it alone.
set -euo pipefail
ROOT=${PERFSTACK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
"$ROOT/scripts/e2e-chart.sh"
