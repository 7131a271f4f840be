#!/usr/bin/env bash
# Local PostgreSQL 15 and Redis 7 on 127.0.0.1 for `make run` and `make test`.
#
#   scripts/services.sh up      install (apt-get, only what is missing) and start both; idempotent
#   scripts/services.sh down    stop exactly the processes `up` started (by recorded pid)
#   scripts/services.sh status  say what runs
#
# Data lives under .run/ (git-ignored). `up` writes .run/env with DATABASE_URL and REDIS_URL.
# Ports: PERFSTACK_PG_PORT (default 55432), PERFSTACK_REDIS_PORT (default 56379), or .run/ports.env.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# A checkout may pin its own ports (several checkouts on one machine): .run/ports.env, git-ignored.
[[ -f $RUN_DIR/ports.env ]] && source "$RUN_DIR/ports.env"

PG_PORT=${PERFSTACK_PG_PORT:-55432}
REDIS_PORT=${PERFSTACK_REDIS_PORT:-56379}
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=$RUN_DIR/postgres
REDIS_DIR=$RUN_DIR/redis
PG_USER=perfstack

# PostgreSQL refuses to run as root; when we are root it runs as the `postgres` system user.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_up() {
  apt_install postgresql-15 postgresql-client-15 postgresql-contrib
  mkdir -p "$PG_DIR"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR" && chmod 700 "$PG_DIR"
  if [[ ! -f $PG_DIR/data/PG_VERSION ]]; then
    log "initialising PostgreSQL in $PG_DIR/data"
    # A password made here, once, for this checkout only; it never leaves .run/.
    head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PG_DIR/password"
    chmod 600 "$PG_DIR/password"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR/password"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --pwfile="$PG_DIR/password" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
      || die "initdb failed, see $PG_DIR/initdb.log"
    cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
CONF
  fi
  if pid_alive "$PG_DIR/postgres.pid" && as_pg "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start >/dev/null \
      || die "PostgreSQL did not start, see $PG_DIR/postgres.log"
    head -1 "$PG_DIR/data/postmaster.pid" >"$PG_DIR/postgres.pid"
  fi
}

redis_up() {
  apt_install redis-server
  mkdir -p "$REDIS_DIR"
  if pid_alive "$REDIS_DIR/redis.pid" && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "Redis already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --daemonize yes \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --save "" --appendonly yes \
    --protected-mode yes >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  die "Redis did not start, see $REDIS_DIR/redis.log"
}

write_env() {
  local pw
  pw=$(cat "$PG_DIR/password")
  umask 077
  cat >"$RUN_DIR/env" <<ENV
export DATABASE_URL=postgres://$PG_USER:$pw@127.0.0.1:$PG_PORT/perfstack
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/
ENV
  # The application database; tests make their own databases next to it.
  PGPASSWORD=$pw psql -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'perfstack'" | grep -q 1 \
    || PGPASSWORD=$pw psql -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -c "CREATE DATABASE perfstack" >/dev/null
  PGOPTIONS="-c client_min_messages=warning" PGPASSWORD=$pw psql -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d perfstack \
    -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
}

stop_pid() { # stop_pid NAME PIDFILE
  if pid_alive "$2"; then
    local pid; pid=$(cat "$2")
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$2"
}

case ${1:-up} in
  up)
    pg_up
    redis_up
    write_env
    log "ready: source $RUN_DIR/env"
    ;;
  down)
    stop_pid PostgreSQL "$PG_DIR/postgres.pid"
    stop_pid Redis "$REDIS_DIR/redis.pid"
    ;;
  status)
    pid_alive "$PG_DIR/postgres.pid" && echo "postgres: running (pid $(cat "$PG_DIR/postgres.pid"), port $PG_PORT)" || echo "postgres: stopped"
    pid_alive "$REDIS_DIR/redis.pid" && echo "redis: running (pid $(cat "$REDIS_DIR/redis.pid"), port $REDIS_PORT)" || echo "redis: stopped"
    ;;
  *) die "usage: $0 up|down|status" ;;
esac
