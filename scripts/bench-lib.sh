# shellcheck shell=bash
# What the API benchmarks share (scripts/bench.sh, scripts/bench-peers.sh): the seeded bench database,
# the release app started on a free loopback port, and a few readings of its /metrics.
# Source it after scripts/lib.sh; it defines functions only. The callers set APP (the release
# binary), OUT (their raw-output folder) and have sourced .run/env (DATABASE_URL, REDIS_URL).

# bench_database NAME PROJECTS EXPORT_TASKS : a fresh database NAME on the server of $DATABASE_URL,
# migrated by $APP and seeded with set-based SQL: 10,000 users, PROJECTS projects, 100,000 tasks spread
# evenly over them and, when EXPORT_TASKS > 0, one more project holding EXPORT_TASKS tasks (the
# export benchmark's). Sets BENCH_URL (its URL) and SEED_SECONDS.
bench_database() {
  local name=$1 projects=$2 export_tasks=$3 start=$SECONDS
  BENCH_URL="${DATABASE_URL%/*}/$name"
  log "creating $name"
  psql -q "$DATABASE_URL" -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
  DATABASE_URL=$BENCH_URL "$APP" migrate >"$OUT/migrate-$name.json"
  log "seeding 10,000 users, $projects projects, 100,000 tasks (and $export_tasks in one more project)"
  psql -q "$BENCH_URL" -v ON_ERROR_STOP=1 -v projects="$projects" -v export_tasks="$export_tasks" <<'SQL' >/dev/null
INSERT INTO users (email, username, first_name, last_name, role)
SELECT 'user' || g || '@bench.test', 'user' || g, 'First' || g, 'Last' || g,
       (ARRAY['admin', 'manager', 'member', 'member'])[1 + g % 4]
FROM generate_series(1, 10000) g;
INSERT INTO projects (owner_id, name, description)
SELECT (SELECT min(id) FROM users) + g % 10000, 'project ' || g, 'benchmark project ' || g
FROM generate_series(1, :projects) g;
INSERT INTO tasks (project_id, title, description, status, priority, assignee_id, due_date)
SELECT (SELECT min(id) FROM projects) + g % :projects, 'task ' || g, 'benchmark task ' || g,
       (ARRAY['todo', 'in_progress', 'review', 'done'])[1 + g % 4], g % 5,
       (SELECT min(id) FROM users) + g % 10000, DATE '2027-01-01' + g % 365
FROM generate_series(1, 100000) g;
SELECT :export_tasks > 0 AS with_export \gset
\if :with_export
INSERT INTO projects (owner_id, name, description)
SELECT min(id), 'export', 'the project whose tasks the export benchmark streams' FROM users;
INSERT INTO tasks (project_id, title, description, status, priority, assignee_id, due_date)
SELECT (SELECT max(id) FROM projects), 'export task ' || g, 'row ' || g,
       (ARRAY['todo', 'in_progress', 'review', 'done'])[1 + g % 4], g % 5,
       (SELECT min(id) FROM users) + g % 10000, DATE '2027-01-01' + g % 365
FROM generate_series(1, :export_tasks) g;
\endif
ANALYZE;
SQL
  # shellcheck disable=SC2034 # read by the callers
  SEED_SECONDS=$((SECONDS - start))
}

# bench_sql SQL : one query against the bench database, unaligned, no headers.
bench_sql() { psql -qtAX "$BENCH_URL" -c "$1"; }

# free_port : the first loopback port in 18080..18180 nothing listens on.
free_port() {
  local p
  for p in $(seq 18080 18180); do
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  die "no free port in 18080..18180"
}

APP_PID=
APP_URL=
# start_app NAME [VAR=value...] : serves the bench database with the given extra environment (the
# app's defaults otherwise), logs to $OUT/app-NAME.log, waits until /readyz answers. Sets APP_PID, APP_URL.
start_app() {
  local name=$1 port
  shift
  port=$(free_port)
  APP_URL="http://127.0.0.1:$port"
  # REDIS_URL is exported by .run/env: unset it so only the cases that pass it get Redis.
  env -u REDIS_URL DATABASE_URL="$BENCH_URL" LISTEN_ADDR="127.0.0.1:$port" RUST_LOG=warn "$@" \
    "$APP" serve >"$OUT/app-$name.log" 2>&1 &
  APP_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS --max-time 2 -o /dev/null "$APP_URL/readyz" 2>/dev/null && return 0
    kill -0 "$APP_PID" 2>/dev/null || die "app ($name) exited, see $OUT/app-$name.log"
    sleep 0.2
  done
  die "app ($name) not ready, see $OUT/app-$name.log"
}

# stop_app : stops the app start_app started, if any.
stop_app() {
  [[ -n $APP_PID ]] || return 0
  kill "$APP_PID" 2>/dev/null || true
  wait "$APP_PID" 2>/dev/null || true
  APP_PID=
}

# cache_hits LEVEL : the app's cache hits at that level (l1, l2) so far; 0 without the cache metrics.
cache_hits() {
  curl -fsS --max-time 5 "$APP_URL/metrics" 2>/dev/null |
    awk -v l="$1" 'index($1, "perfstack_cache_hits_total{") == 1 && index($1, "level=\"" l "\"") { s += $2 }
      END { printf "%d", s }'
}

# ms MICROSECONDS : the same duration in milliseconds, two decimals.
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
