# The SLO rules a stack's PrometheusRule carries, as the operator renders them (`perfstack-operator
# monitoring-rules`, the same builder the reconcile uses): `promtool check rules`, then the unit tests
# of operator/tests/rules/slo.test.yaml with `promtool test rules`. promtool comes from Debian's
# `prometheus` package, installed when missing.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$PERFSTACK_ROOT"
command -v promtool >/dev/null || apt_install prometheus

cargo build -q -p perfstack-operator --bin perfstack-operator
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp operator/tests/rules/slo.test.yaml "$work/"
target/debug/perfstack-operator monitoring-rules --stack operator/tests/rules/stack.yaml >"$work/rules.yaml"
promtool check rules "$work/rules.yaml" || die "promtool rejected the rules the operator renders"
(cd "$work" && promtool test rules slo.test.yaml) || die "the SLO rules failed their promtool unit tests"
log "monitoring rules: promtool check and unit tests passed"
