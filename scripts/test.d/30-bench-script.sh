# `make bench` is too slow for `make test` (and its figures are never asserted), so this stage only
# keeps it runnable: the script parses, and docs/benchmarks.md still has the block it rewrites.
# The load tester itself is tested by the cargo stage (app/tests/loadtest.rs: every scenario at a
# tiny scale against the real API, the reports, exit code 1).
set -euo pipefail
source "$PERFSTACK_ROOT/scripts/lib.sh"
bash -n "$PERFSTACK_ROOT/scripts/bench.sh"
bash -n "$PERFSTACK_ROOT/scripts/bench-operator.sh"
doc=$PERFSTACK_ROOT/docs/benchmarks.md
grep -q '^<!-- bench:begin' "$doc" || die "$doc lost its <!-- bench:begin --> marker"
grep -q '^<!-- bench:end -->' "$doc" || die "$doc lost its <!-- bench:end --> marker"
grep -q '^<!-- bench-operator:begin' "$doc" || die "$doc lost its <!-- bench-operator:begin --> marker"
grep -q '^<!-- bench-operator:end -->' "$doc" || die "$doc lost its <!-- bench-operator:end --> marker"
bash -n "$PERFSTACK_ROOT/scripts/bench-lib.sh"
bash -n "$PERFSTACK_ROOT/scripts/bench-peers.sh"
bash -n "$PERFSTACK_ROOT/scripts/bench-peers-report.sh"
grep -q '^<!-- bench-peers:begin' "$doc" || die "$doc lost its <!-- bench-peers:begin --> marker"
grep -q '^<!-- bench-peers:end -->' "$doc" || die "$doc lost its <!-- bench-peers:end --> marker"
