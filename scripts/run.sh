#!/usr/bin/env bash
# `make run`: services, migrations, demo data, then the API in the foreground on 127.0.0.1:8080.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PERFSTACK_ROOT"
scripts/services.sh up
source "$RUN_DIR/env"
cargo build --bin perfstack-app
app=target/debug/perfstack-app
"$app" migrate
"$app" seed
exec "$app" serve
