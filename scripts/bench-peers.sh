#!/usr/bin/env bash
# `make bench-peers` (and the last part of `make bench`): perfstack side by side with the peers of
# issue 16, in one run on this machine, with the same wrk settings and the same dataset size
# (10,000 users, 2,000 projects, 100,000 tasks; 50 tasks per project):
#   - the Express peer: the performance design document's own stack in Node/Express
#     (bench-peers/express-seed, one process per core: WORKERS=2), its own PostgreSQL and Redis;
#   - perfstack: the release build, default configuration (L1 + Redis L2), on its own bench database
#     `perfstack_peers` on the Express peer's PostgreSQL (same server settings for both), with the
#     Redis of the local services (scripts/services.sh);
#   - the ceiling: bench-peers/ceiling, a bare axum handler answering GET /api/v1/users/{id} from a
#     constant (the most a GET by id can do here).
# Cases, each a warm-up (GETs only: POST adds rows) then the measured wrk run, interleaved per case so
# the servers compared meet the same machine state: GET /api/v1/users/{id} (random of 1,000 ids:
# cache hits), GET /api/v1/projects/{id}/tasks?page=1..3&limit=20 (random of 200 projects),
# POST /api/v1/tasks (random of 200 projects); every request sends Accept-Encoding: gzip. While
# perfstack's task page runs, pg_stat_activity of its database and its perfstack_db_pool_* gauges are
# sampled. The figures and the goals they meet or miss replace the bench-peers block of
# docs/benchmarks.md; raw outputs stay in bench-out/peers/.
#
# The peers folder is $PERFSTACK_BENCH_PEERS, else ../shared/bench-peers, else ../../shared/bench-peers.
# Without it (or without node 20+ and npm, or not as root: the Express peer's run-local.sh runs its
# PostgreSQL as the postgres user) this says what is missing and exits 0: the side-by-side rows are
# skipped. The Express peer runs from a copy under bench-out/peers/ (its npm ci writes node_modules
# there, not into the shared folder), with RUN_DIR bench-out/peers/express-run.
#
# Knobs (environment):
#   BENCH_PEERS_DURATION      measured wrk run per case and server (default 10s)
#   BENCH_PEERS_WARMUP        wrk warm-up before each GET case (default 3s; 0 skips it)
#   BENCH_PEERS_CONNECTIONS   wrk connections (default 64)
#   BENCH_PEERS_THREADS       wrk threads (default 2)
#   BENCH_PEERS_WORKERS       Express cluster workers (default 2, one per core)
#   BENCH_PEERS_CEILING_PORT  loopback port of the ceiling (default 3200)
#   BENCH_PEERS_SAMPLE        seconds between pg_stat_activity / pool samples (default 0.5)
#   BENCH_PEERS_ROUNDS        rounds of the cached GET (perfstack and bare axum alternating) and of the
#                             task page (Express and perfstack alternating), default 3; each case's
#                             goals are judged on its median round (a 2-core VM moves single runs)
#   BENCH_PEERS_SMALL_POOLS   pool sizes (DB_POOL_MAX) the task page also runs at after the default
#                             pool, to see PostgreSQL's backends when the pool is surely the bottleneck
#                             (default "2 1"; empty skips them)
# Fixed by the Express peer's run-local.sh: its server on 127.0.0.1:3100, PostgreSQL on :55433, Redis on
# :56380. perfstack takes the first free port from 18080 and the services of .run/ports.env.
# Never part of `make test`: figures are recorded, not asserted.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/bench-lib.sh"
cd "$PERFSTACK_ROOT"

skip() {
  log "side-by-side benchmark SKIPPED ($*): the bench-peers rows of docs/benchmarks.md are not measured"
  exit 0
}
PEERS=$(bench_peers_dir) ||
  skip "no bench-peers folder in \$PERFSTACK_BENCH_PEERS, ../shared/bench-peers or ../../shared/bench-peers"
command -v node >/dev/null || skip "node is not installed; the Express peer needs node 20+"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
((NODE_MAJOR >= 20)) || skip "node $(node -v) is older than the 20 the Express peer needs"
command -v npm >/dev/null || skip "npm is not installed; the Express peer needs it"
[[ $(id -u) -eq 0 ]] || skip "not root; the Express peer's run-local.sh needs root"

DURATION=${BENCH_PEERS_DURATION:-10s}
WARMUP=${BENCH_PEERS_WARMUP:-3s}
CONNECTIONS=${BENCH_PEERS_CONNECTIONS:-64}
THREADS=${BENCH_PEERS_THREADS:-2}
WORKERS=${BENCH_PEERS_WORKERS:-2}
CEILING_PORT=${BENCH_PEERS_CEILING_PORT:-3200}
SAMPLE=${BENCH_PEERS_SAMPLE:-0.5}
ROUNDS=${BENCH_PEERS_ROUNDS:-3}
SMALL_POOLS=${BENCH_PEERS_SMALL_POOLS-2 1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_PEERS_ROUNDS must be a whole number >= 1, got '$ROUNDS'"
for pool in $SMALL_POOLS; do
  [[ $pool =~ ^[1-9][0-9]*$ ]] || die "BENCH_PEERS_SMALL_POOLS must list pool sizes >= 1, got '$SMALL_POOLS'"
done
EXPRESS_URL=http://127.0.0.1:3100
CEILING_URL=http://127.0.0.1:$CEILING_PORT
OUT=$PERFSTACK_ROOT/bench-out/peers
EXPRESS_DIR=$OUT/express-seed
EXPRESS_RUN=$OUT/express-run
DOC=docs/benchmarks.md
mkdir -p "$OUT"

for port in 3100 55433 56380 "$CEILING_PORT"; do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
    die "127.0.0.1:$port is taken (another Express peer or ceiling running?); the peers need it"
done
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl ca-certificates
scripts/services.sh up
source "$RUN_DIR/env"
command -v psql >/dev/null || apt_install postgresql-client-15

# --- everything started here stops on exit ----------------------------------------------------
EXPRESS_STARTED=0
CEILING_PID=
SAMPLER_PID=
# cleanup : stops what runs, once (each handle is cleared first); never fails, so it can run from the
# EXIT trap after an error as well as at the end.
cleanup() {
  local pid
  if [[ -n $SAMPLER_PID ]]; then
    pid=$SAMPLER_PID SAMPLER_PID=
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  stop_app
  if [[ -n $CEILING_PID ]]; then
    pid=$CEILING_PID CEILING_PID=
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if ((EXPRESS_STARTED)); then
    EXPRESS_STARTED=0
    RUN_DIR=$EXPRESS_RUN "$EXPRESS_DIR/stop-local.sh" >&2 || log "the Express peer's stop-local.sh failed; see above"
  fi
  return 0
}
trap cleanup EXIT

# --- builds --------------------------------------------------------------------------------------
log "building perfstack-app (release)"
cargo build --release -p perfstack-app --bin perfstack-app
APP=$PERFSTACK_ROOT/target/release/perfstack-app
log "building the ceiling (release, target dir target/bench-peers-ceiling)"
CARGO_TARGET_DIR=$PERFSTACK_ROOT/target/bench-peers-ceiling \
  cargo build --release --locked --manifest-path "$PEERS/ceiling/Cargo.toml"
CEILING=$PERFSTACK_ROOT/target/bench-peers-ceiling/release/ceiling

# --- the three servers ---------------------------------------------------------------------------
log "starting the Express peer ($WORKERS workers) from a copy in $EXPRESS_DIR"
mkdir -p "$EXPRESS_DIR"
cp -rf "$PEERS/express-seed/." "$EXPRESS_DIR/"
chmod -R u+w "$EXPRESS_DIR"
EXPRESS_STARTED=1
RUN_DIR=$EXPRESS_RUN WORKERS=$WORKERS "$EXPRESS_DIR/run-local.sh" >"$OUT/express-run-local.log" 2>&1 ||
  die "the Express peer did not start, see $OUT/express-run-local.log"

# perfstack's bench database lives on the Express peer's PostgreSQL (its settings: fsync and
# synchronous_commit on, as a production server has them; the local services run with both off for
# speed), so both stacks write through the same server and the POST comparison is fair. The peer's
# password is random per run and stays in its RUN_DIR; it is never printed.
DATABASE_URL="postgres://postgres:$(cat "$EXPRESS_RUN/pg.password")@127.0.0.1:55433/postgres"
bench_database perfstack_peers 2000 0
log "seeded in $SEED_SECONDS s"
bench_sql "SELECT id FROM users WHERE status = 'active' ORDER BY id LIMIT 1000" >"$OUT/user_ids.txt"
bench_sql "SELECT id FROM projects ORDER BY id LIMIT 200" >"$OUT/project_ids.txt"
read -r USERS PROJECTS TASKS PER_PROJECT <<<"$(bench_sql "SELECT (SELECT count(*) FROM users),
  (SELECT count(*) FROM projects), (SELECT count(*) FROM tasks),
  (SELECT count(*) FROM tasks WHERE project_id = (SELECT min(id) FROM projects))" | tr '|' ' ')"
start_app peers REDIS_URL="$REDIS_URL"

LISTEN=127.0.0.1:$CEILING_PORT "$CEILING" >"$OUT/ceiling.log" 2>&1 &
CEILING_PID=$!
for _ in $(seq 1 50); do
  curl -fsS --max-time 2 -o /dev/null "$CEILING_URL/health" 2>/dev/null && break
  kill -0 "$CEILING_PID" 2>/dev/null || die "the ceiling exited, see $OUT/ceiling.log"
  sleep 0.1
done

# Each server answers each case before anything is measured; the encoding of a task page is recorded.
first() { head -n1 "$1"; }
answers() { curl -fsS --max-time 10 -o /dev/null "$1" || die "$1 did not answer 2xx; the benchmark would measure errors"; }
# encoding URL : the Content-Encoding of URL's answer to a gzip-accepting request ("none" without one).
encoding() {
  answers "$1"
  curl -fsS --max-time 10 -o /dev/null -D - -H 'Accept-Encoding: gzip' "$1" |
    awk -F': *' 'tolower($1) == "content-encoding" { gsub(/\r/, "", $2); e = $2 } END { print e ? e : "none" }'
}
answers "$EXPRESS_URL/api/v1/users/$(first "$EXPRESS_RUN/user_ids.txt")"
answers "$APP_URL/api/v1/users/$(first "$OUT/user_ids.txt")"
answers "$CEILING_URL/api/v1/users/$(first "$OUT/user_ids.txt")"
EXPRESS_ENCODING=$(encoding "$EXPRESS_URL/api/v1/projects/$(first "$EXPRESS_RUN/project_ids.txt")/tasks?page=1&limit=20")
APP_ENCODING=$(encoding "$APP_URL/api/v1/projects/$(first "$OUT/project_ids.txt")/tasks?page=1&limit=20")

# --- wrk -------------------------------------------------------------------------------------------
declare -A RESULT CORES
LUA_PERFSTACK=$PEERS/perfstack.lua
LUA_EXPRESS=$EXPRESS_DIR/bench/peer.lua
# cpu_ticks PID : the process's user + system CPU time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
TICKS_PER_S=$(getconf CLK_TCK)
# measure SERVER CASE URL LUA MODE IDS : wrk with this run's settings (a warm-up first for the GET
# cases); the lua script's SUMMARY line goes to RESULT[SERVER/CASE] and, for perfstack, the cores its
# process used over the measured run to CORES[SERVER/CASE].
measure() {
  local server=$1 case=$2 url=$3 lua=$4 mode=$5 ids=$6 ticks start
  if [[ $mode != create && $WARMUP != 0 ]]; then
    ACCEPT_ENCODING=gzip wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$lua" "$url" -- "$mode" "$ids" >/dev/null
  fi
  [[ $server == perfstack ]] && ticks=$(cpu_ticks "$APP_PID") start=$EPOCHREALTIME
  ACCEPT_ENCODING=gzip wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency --timeout 10s -s "$lua" \
    "$url" -- "$mode" "$ids" >"$OUT/$server-$case.txt"
  if [[ $server == perfstack ]]; then
    CORES[$server/$case]=$(awk -v a="$ticks" -v b="$(cpu_ticks "$APP_PID")" -v hz="$TICKS_PER_S" \
      -v t0="$start" -v t1="$EPOCHREALTIME" 'BEGIN { if (t1 > t0) printf "%.2f", (b - a) / hz / (t1 - t0) }')
  fi
  RESULT[$server/$case]=$(grep '^SUMMARY' "$OUT/$server-$case.txt" | cut -d' ' -f2-)
  log "$server $case: ${RESULT[$server/$case]}${CORES[$server/$case]:+ app cores ${CORES[$server/$case]}}"
}
# field SERVER/CASE NAME : one figure of that run's SUMMARY line (req/s, requests, p50, p99, non2xx, ...).
field() { sed -nE "s#(^|.* )$2=([0-9.]+).*#\2#p" <<<"${RESULT[$1]:-}"; }

# pool_sample : one line "active idle idle_in_tx in_use pool_idle waiting max": perfstack_peers'
# backends in pg_stat_activity by state, then the app's perfstack_db_pool_* gauges.
pool_sample() {
  local states gauges
  states=$(psql -qtAX -F' ' "$DATABASE_URL" -c "SELECT count(*) FILTER (WHERE state = 'active'),
    count(*) FILTER (WHERE state = 'idle'), count(*) FILTER (WHERE state = 'idle in transaction')
    FROM pg_stat_activity WHERE datname = 'perfstack_peers' AND pid <> pg_backend_pid()") || return 0
  gauges=$(curl -fsS --max-time 2 "$APP_URL/metrics" 2>/dev/null | awk '
    $1 == "perfstack_db_pool_connections{state=\"in_use\"}" { u = $2 }
    $1 == "perfstack_db_pool_connections{state=\"idle\"}" { i = $2 }
    $1 == "perfstack_db_pool_waiting" { w = $2 }
    $1 == "perfstack_db_pool_max_connections" { m = $2 }
    END { printf "%d %d %d %d", u, i, w, m }') || return 0
  echo "$states $gauges"
}
sample_pool() {
  while :; do
    pool_sample
    sleep "$SAMPLE"
  done
}
# sampled_tasks CASE SAMPLES : perfstack's task page as CASE, with the pool sampled into SAMPLES.
sampled_tasks() {
  sample_pool >"$2" &
  SAMPLER_PID=$!
  measure perfstack "$1" "$APP_URL" "$LUA_PERFSTACK" tasks "$OUT/project_ids.txt"
  kill "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=
}

# The cached GET in ROUNDS rounds, perfstack and the ceiling alternating; the median round (by share of
# the ceiling) stands for the case in the table, every round is listed under it.
measure express users "$EXPRESS_URL" "$LUA_EXPRESS" users "$EXPRESS_RUN/user_ids.txt"
l1=$(cache_hits l1)
l2=$(cache_hits l2)
for round in $(seq 1 "$ROUNDS"); do
  measure perfstack "users$round" "$APP_URL" "$LUA_PERFSTACK" users "$OUT/user_ids.txt"
  measure ceiling "users$round" "$CEILING_URL" "$LUA_PERFSTACK" users "$OUT/user_ids.txt"
done
HITS="L1 $(($(cache_hits l1) - l1)), L2 $(($(cache_hits l2) - l2)) over the $ROUNDS rounds"
# median_round CASE PEER : the round whose perfstack/CASE<round> : PEER/CASE<round> rate ratio is the median.
median_round() {
  local round
  for round in $(seq 1 "$ROUNDS"); do
    awk -v r="$round" -v a="$(field "perfstack/$1$round" req/s)" -v b="$(field "$2/$1$round" req/s)" \
      'BEGIN { printf "%s %.6f\n", r, (b > 0 ? a / b : 0) }'
  done | sort -k2,2g | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }'
}
USERS_ROUND=$(median_round users ceiling)
RESULT[perfstack/users]=${RESULT[perfstack/users$USERS_ROUND]}
RESULT[ceiling/users]=${RESULT[ceiling/users$USERS_ROUND]}

# The task page in ROUNDS rounds too, Express and perfstack alternating (either one's rate moved by
# up to 2x between runs on a shared 2-core VM); the median round by ratio stands for the case, with
# its pool samples.
for round in $(seq 1 "$ROUNDS"); do
  measure express "tasks$round" "$EXPRESS_URL" "$LUA_EXPRESS" tasks "$EXPRESS_RUN/project_ids.txt"
  sampled_tasks "tasks$round" "$OUT/pool-samples-round$round.txt"
done
TASKS_ROUND=$(median_round tasks express)
RESULT[express/tasks]=${RESULT[express/tasks$TASKS_ROUND]}
RESULT[perfstack/tasks]=${RESULT[perfstack/tasks$TASKS_ROUND]}
CORES[perfstack/tasks]=${CORES[perfstack/tasks$TASKS_ROUND]:-}
cp "$OUT/pool-samples-round$TASKS_ROUND.txt" "$OUT/pool-samples.txt"
# The same page with smaller pools, where the pool is surely the bottleneck: what PostgreSQL's
# backends do then. The queue bound is raised so the run's clients wait instead of being shed (503).
for pool in $SMALL_POOLS; do
  stop_app
  start_app "peers-pool$pool" REDIS_URL="$REDIS_URL" DB_POOL_MAX="$pool" DB_QUEUE_PER_CONNECTION="$CONNECTIONS"
  sampled_tasks "tasks-pool$pool" "$OUT/pool-samples-$pool.txt"
done
if [[ -n $SMALL_POOLS ]]; then
  stop_app
  start_app peers REDIS_URL="$REDIS_URL"
fi

measure express create "$EXPRESS_URL" "$LUA_EXPRESS" create "$EXPRESS_RUN/project_ids.txt"
measure perfstack create "$APP_URL" "$LUA_PERFSTACK" create "$OUT/project_ids.txt"

show() { runuser -u postgres -- psql -qtAX -h "$EXPRESS_RUN/sock" -p 55433 -d perfpeer -c "SHOW $1"; }
EXPRESS_PG="fsync $(show fsync), synchronous_commit $(show synchronous_commit)"
APP_PG="fsync $(bench_sql 'SHOW fsync'), synchronous_commit $(bench_sql 'SHOW synchronous_commit')"
NODE_VERSION=$(node -v)
cleanup
trap - EXIT

# --- docs/benchmarks.md ----------------------------------------------------------------------------
source "$(dirname "$0")/bench-peers-report.sh"
peers_block >"$OUT/block.md"
replace_generated_block "$DOC" bench-peers "$OUT/block.md"
log "figures written to $DOC"
cat "$OUT/block.md"
