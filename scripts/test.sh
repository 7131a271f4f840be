#!/usr/bin/env bash
# `make test`: every stage in scripts/test.d/, in name order. Each stage is a bash script that
# exits non-zero on failure; stages see DATABASE_URL and REDIS_URL from .run/env.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PERFSTACK_ROOT"
"$PERFSTACK_ROOT/scripts/services.sh" up
source "$RUN_DIR/env"
export PERFSTACK_ROOT RUN_DIR
start=$SECONDS
for stage in scripts/test.d/*.sh; do
  log "== stage $(basename "$stage" .sh) =="
  t=$SECONDS
  bash "$stage"
  log "== stage $(basename "$stage" .sh) passed in $((SECONDS - t)) s =="
done
log "all stages passed in $((SECONDS - start)) s"
