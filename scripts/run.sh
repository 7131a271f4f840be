#!/usr/bin/env bash
# `make run`: services, migrations, demo data, then the API in the foreground on 127.0.0.1:8080.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PERFSTACK_ROOT"
scripts/services.sh up
source "$RUN_DIR/env"
cargo build --bin perfstack-app --bin perfstack-operator
app=target/debug/perfstack-app
"$app" migrate
"$app" seed
# The pool tuner beside the app (docs/tuning.md): it reads /metrics every 30 s, prints each
# decision and rewrites the tuning file the app reloads. services.sh sets max_connections = 200.
export TUNING_FILE="$RUN_DIR/tuning.yaml"
addr=${LISTEN_ADDR:-127.0.0.1:8080}
target/debug/perfstack-operator local --app-url "http://${addr/0.0.0.0/127.0.0.1}" \
  --tuning-file "$TUNING_FILE" --db-max-connections 200 &
tuner=$!
trap 'kill "$tuner" 2>/dev/null || true' EXIT
"$app" serve
