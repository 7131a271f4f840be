# `make bench` is too slow for `make test` (and its figures are never asserted), so this stage only
# keeps it runnable: the script parses, and docs/benchmarks.md still has the block it rewrites.
# The load tester itself is tested by the cargo stage (app/tests/loadtest.rs: every scenario at a
# tiny scale against the real API, the reports, exit code 1).
set -euo pipefail
source "$PERFSTACK_ROOT/scripts/lib.sh"
for script in bench.sh bench-operator.sh bench-lib.sh bench-peers.sh bench-peers-report.sh bench-tuner-idle.sh; do
  bash -n "$PERFSTACK_ROOT/scripts/$script"
done
doc=$PERFSTACK_ROOT/docs/benchmarks.md
for marker in bench bench-operator bench-peers bench-tuner-idle; do
  grep -q "^<!-- $marker:begin" "$doc" || die "$doc lost its <!-- $marker:begin --> marker"
  grep -q "^<!-- $marker:end -->" "$doc" || die "$doc lost its <!-- $marker:end --> marker"
done
