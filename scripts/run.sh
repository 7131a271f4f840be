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
addr=${LISTEN_ADDR:-127.0.0.1:8080}
# The pool tuner beside the app (docs/tuning.md): it reads /metrics every 30 s, prints each
# decision and rewrites the tuning file the app reloads. services.sh sets max_connections = 200.
export TUNING_FILE="$RUN_DIR/tuning.yaml"
target/debug/perfstack-operator local --app-url "http://${addr/0.0.0.0/127.0.0.1}" \
  --tuning-file "$TUNING_FILE" --db-max-connections 200 &
tuner=$!
trap 'kill "$tuner" 2>/dev/null || true' EXIT
cat >&2 <<URLS

perfstack API on http://$addr  (Ctrl-C stops it; make services-down stops PostgreSQL and Redis)
  curl http://$addr/health
  curl 'http://$addr/api/v1/users?limit=5&fields=id,email,username'
  curl 'http://$addr/api/v1/projects/1/tasks?status=todo&limit=5'
  curl 'http://$addr/api/v1/users/42/tasks?cursor='
  curl -o tasks.json http://$addr/api/v1/projects/1/tasks/export
  curl http://$addr/openapi.json
  tuner decisions print below every 30 s; the tuning file is $TUNING_FILE

URLS
"$app" serve --listen "$addr"
