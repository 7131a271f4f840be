# The API against its own /openapi.json with schemathesis (PyPI, pinned, in .run/tools): every check,
# every phase (examples, coverage, fuzzing, stateful). It must find no server error, no status code
# or response the document does not describe, and no schema-valid request rejected. A real `serve`
# with auth on (the admin token for every request, so the ignored_auth check proves the 401s) runs
# on a database of its own with a small seeded dataset, and Redis for the job routes.
# Runtime is bounded by --max-examples and --max-time (a few minutes on 2 cores).
# One check is left out: ensure_resource_availability (ST302) reports a task created then gone as a
# bug, but a stateful sequence that deletes the task's project in between deletes the task with it
# (ON DELETE CASCADE, docs/api.md), which schemathesis cannot see. app/tests/api covers create-then-read.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$PERFSTACK_ROOT"
[[ -n ${DATABASE_URL:-} ]] || source "$RUN_DIR/env"

SCHEMATHESIS=${PERFSTACK_SCHEMATHESIS:-schemathesis==4.32.5}
venv=${PERFSTACK_TOOLS_DIR:-$RUN_DIR/tools}/schemathesis
if [[ ! -x $venv/bin/st ]] || ! grep -qxF "$SCHEMATHESIS" "$venv/pinned" 2>/dev/null; then
  command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv python3-pip
  log "installing $SCHEMATHESIS into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$SCHEMATHESIS" || die "pip install $SCHEMATHESIS failed"
  echo "$SCHEMATHESIS" >"$venv/pinned"
fi

cargo build -q --bin perfstack-app
app=$PERFSTACK_ROOT/target/debug/perfstack-app
work=$(mktemp -d)
app_pid=
cleanup() {
  [[ -n $app_pid ]] && kill "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null
  mkdir -p "$RUN_DIR/schemathesis" && cp "$work/app.log" "$RUN_DIR/schemathesis/app.log" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A database of its own: the fuzzing writes (and deletes) freely.
db_url=${DATABASE_URL%/*}/perfstack_schemathesis
admin_url=${DATABASE_URL%/*}/postgres
psql -q "$admin_url" -c "DROP DATABASE IF EXISTS perfstack_schemathesis WITH (FORCE)" -c "CREATE DATABASE perfstack_schemathesis" >/dev/null
DATABASE_URL=$db_url "$app" migrate >/dev/null
DATABASE_URL=$db_url "$app" seed --users 30 --projects 6 --tasks 120 2>/dev/null

token() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
admin=$(token)
DATABASE_URL=$db_url LISTEN_ADDR=127.0.0.1:0 LOG_FORMAT=json RUST_LOG=warn,perfstack_app=info \
  API_TOKEN=$(token) API_ADMIN_TOKEN=$admin JOBS_KEY_PREFIX="perfstack:schemathesis:$RANDOM" \
  REPORTS_PER_MINUTE=600 REPORTS_BURST=100 "$app" serve >"$work/app.log" 2>&1 &
app_pid=$!
addr=
for _ in $(seq 300); do
  addr=$(grep -o '"addr":"[0-9.:]*"' "$work/app.log" | head -1 | cut -d'"' -f4) || true
  [[ -n $addr ]] && curl -fs "http://$addr/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://$addr/readyz" >/dev/null || { cat "$work/app.log" >&2; die "the app did not become ready"; }

log "schemathesis against http://$addr/openapi.json"
status=0
"$venv/bin/st" run "http://$addr/openapi.json" \
  --checks all --phases examples,coverage,fuzzing,stateful \
  --exclude-checks ensure_resource_availability \
  --header "Authorization: Bearer $admin" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" --max-time "${SCHEMATHESIS_MAX_TIME:-240}" \
  --workers 1 --seed "${SCHEMATHESIS_SEED:-1}" --no-color \
  --report junit --report-dir "$RUN_DIR/schemathesis" || status=$?
if ((status != 0)); then
  grep -E '"level":"(ERROR|error)"' "$work/app.log" | tail -20 >&2 || true
  die "schemathesis found failures (report: $RUN_DIR/schemathesis)"
fi
log "schemathesis passed"
