#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer where galaxy_tasks is configured to find them.
#
# Idempotent, and quick when both already run. For each URL (GALAXY_DATABASE_URL,
# GALAXY_REDIS_URL, GALAXY_BROKER_URL, and the tests' GALAXY_TEST_POSTGRES_URL /
# GALAXY_TEST_REDIS_URL when set; defaults as in galaxy_tasks/config.py):
#   * on this machine (localhost, 127.x, ::1): install what is missing
#     (apt-get, only when a needed command is missing), start the server when
#     nothing answers, and wait until it does;
#   * anywhere else: start nothing, only wait until it answers.
# A running server is never stopped or restarted. On a fresh PostgreSQL install,
# when postgres@127.0.0.1 cannot connect without a password, local TCP
# connections are set to `trust` in pg_hba.conf and the cluster is reloaded.
#
# SERVICES_WAIT_SECONDS (default 60) bounds each wait; past it the script says
# what did not answer and exits 1.
#
# SC2016: `bash -c '…'` scripts take their arguments as $0/$1 on purpose.
# SC2012: cluster versions are plain numbers, and `sort -V` needs a list.
# SC2317: functions handed to wait_until are called indirectly.
# shellcheck disable=SC2016,SC2012,SC2317
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WAIT_SECONDS=${SERVICES_WAIT_SECONDS:-60}
REDIS_URL=${GALAXY_REDIS_URL:-redis://127.0.0.1:6379/0}
DATABASE_URL=${GALAXY_DATABASE_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/galaxy}
BROKER_URL=${GALAXY_BROKER_URL:-$REDIS_URL}
HBA_MARK="# galaxy_tasks scripts/services.sh: local TCP connections without a password"

CHECKED=" "   # host:port pairs already handled in this run
LAST_REPLY=""

# wait_until COMMAND... — retry COMMAND every half second for at most WAIT_SECONDS.
wait_until() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# tcp_open HOST PORT — something accepts TCP connections there (3 s bound).
tcp_open() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# ---------------------------------------------------------------- Redis

# redis_ready SCHEME HOST PORT — Redis answers PING (NOAUTH counts: it answers).
redis_ready() {
  if [ "$1" = rediss ]; then # TLS: a TCP connection is all we check
    tcp_open "$2" "$3"
    return
  fi
  LAST_REPLY=$(timeout 3 bash -c \
    'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && IFS= read -r -t 2 line <&3 && printf "%s\n" "$line"' \
    "$2" "$3" 2>/dev/null | tr -d '\r') || LAST_REPLY=""
  [[ $LAST_REPLY == "+PONG" || $LAST_REPLY == -NOAUTH* ]]
}

ensure_redis() { # ensure_redis URL LABEL
  local url=$1 label=$2 scheme host port
  parse_url "$url" 6379
  scheme=$URL_SCHEME host=${URL_HOST:-127.0.0.1} port=$URL_PORT
  case "$scheme" in
    redis | rediss) ;;
    unix) say "$label: $url is a Unix socket; not checked" && return 0 ;;
    *) die "$label: unsupported Redis URL scheme '$scheme' in $url" ;;
  esac
  [[ $CHECKED == *" $host:$port "* ]] && return 0
  CHECKED+="$host:$port "
  LAST_REPLY=""
  if ! redis_ready "$scheme" "$host" "$port"; then
    if ! is_local_host "$host"; then
      say "$label: Redis at $host:$port is not local: waiting for it, starting nothing"
    elif [ "$scheme" = rediss ]; then
      say "$label: $url asks for TLS; not starting a local Redis, waiting for one"
    else
      need_command redis-server redis-server
      if ! redis_ready "$scheme" "$host" "$port"; then # the package's own service may have started it
        local bind=$host
        [ "$bind" = localhost ] && bind=127.0.0.1
        say "$label: starting redis-server on $bind:$port (no persistence: a development server)"
        redis-server --daemonize yes --bind "$bind" --port "$port" --save "" --appendonly no >/dev/null ||
          die "$label: redis-server did not start on $bind:$port"
      fi
    fi
    wait_until redis_ready "$scheme" "$host" "$port" ||
      die "$label: Redis at $host:$port did not answer within ${WAIT_SECONDS}s${LAST_REPLY:+ (it said: $LAST_REPLY)}"
  fi
  say "$label: Redis at $host:$port answers"
}

# ---------------------------------------------------------- PostgreSQL

# pg_listening HOST PORT — a server socket exists (empty HOST: the local Unix socket).
pg_listening() {
  if [ -z "$1" ]; then
    [ -S "/var/run/postgresql/.s.PGSQL.$2" ]
  else
    tcp_open "$1" "$2"
  fi
}

pg_ready() { # pg_ready HOST PORT
  pg_isready -q -t 3 ${1:+-h "$1"} -p "$2" >/dev/null 2>&1
}

# pg_cluster PORT — "VERSION NAME" of the local Debian cluster configured on PORT, else
# the newest `main` cluster, else "" (no cluster yet).
pg_cluster() {
  local found v
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  found=$(pg_lsclusters -h 2>/dev/null | awk -v port="$1" '$3 == port {print $1, $2; exit}')
  if [ -z "$found" ]; then
    for v in $(ls /etc/postgresql 2>/dev/null | sort -V); do
      [ -d "/etc/postgresql/$v/main" ] && found="$v main"
    done
  fi
  printf '%s' "$found"
}

start_local_postgres() { # start_local_postgres LABEL PORT
  local label=$1 port=$2 cluster version
  need_command pg_ctlcluster postgresql
  cluster=$(pg_cluster "$port")
  if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then
      apt_install postgresql
      cluster=$(pg_cluster "$port")
      version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    fi
    [ -n "$version" ] || die "$label: no PostgreSQL server found even after installing postgresql"
    if [ -z "$cluster" ]; then
      say "$label: creating PostgreSQL cluster $version/main on port $port"
      pg_createcluster --port "$port" "$version" main >/dev/null || die "$label: pg_createcluster $version main failed"
      cluster="$version main"
    fi
  fi
  # shellcheck disable=SC2086  # "VERSION NAME" splits into two arguments
  if pg_ctlcluster $cluster status >/dev/null 2>&1; then
    say "$label: PostgreSQL cluster ${cluster/ //} is running; waiting for it to answer"
  else
    say "$label: starting PostgreSQL cluster ${cluster/ //}"
    # shellcheck disable=SC2086
    pg_ctlcluster --skip-systemctl-redirect $cluster start || die "$label: PostgreSQL ${cluster/ //} did not start"
  fi
}

pg_connect_error() { # pg_connect_error HOST PORT — empty when postgres@HOST can connect without a password
  PGCONNECT_TIMEOUT=3 psql -X -w -q -h "$1" -p "$2" -U postgres -d postgres -Atc 'SELECT 1' 2>&1 >/dev/null </dev/null ||
    true
}

pg_connects() { [ -z "$(pg_connect_error "$1" "$2")" ]; }

# ensure_postgres_login LABEL HOST PORT — on a fresh Debian cluster postgres@127.0.0.1
# needs a password; the development setup trusts local TCP connections instead.
ensure_postgres_login() {
  local label=$1 host=$2 port=$3 error cluster hba
  need_command psql postgresql-client
  error=$(pg_connect_error "$host" "$port")
  [ -z "$error" ] && return 0
  case "$error" in
    *password* | *"no pg_hba.conf entry"*) ;;
    *) die "$label: cannot connect as postgres@$host:$port: $error" ;;
  esac
  cluster=$(pg_cluster "$port")
  hba=/etc/postgresql/${cluster/ //}/pg_hba.conf
  if [ -z "$cluster" ] || [ ! -f "$hba" ]; then
    die "$label: postgres@$host:$port needs a password and no local Debian cluster config was found: $error"
  fi
  grep -qF "$HBA_MARK" "$hba" &&
    die "$label: $hba already trusts local TCP connections, yet postgres@$host:$port fails: $error"
  say "$label: postgres@$host:$port needs a password; trusting local TCP connections in $hba"
  {
    printf '%s\n' "$HBA_MARK" "host all all 127.0.0.1/32 trust" "host all all ::1/128 trust" ""
    cat "$hba"
  } >"$hba.galaxy-new"
  cat "$hba.galaxy-new" >"$hba" # keeps the file's owner and mode
  rm -f "$hba.galaxy-new"
  # shellcheck disable=SC2086
  pg_ctlcluster --skip-systemctl-redirect $cluster reload
  wait_until pg_connects "$host" "$port" ||
    die "$label: postgres@$host:$port still cannot connect after the reload: $(pg_connect_error "$host" "$port")"
}

ensure_postgres() { # ensure_postgres URL LABEL
  local url=$1 label=$2 host port where
  parse_url "$url" 5432
  case "$URL_SCHEME" in
    postgres | postgresql | postgresql+*) ;;
    *) die "$label: unsupported PostgreSQL URL scheme '$URL_SCHEME' in $url" ;;
  esac
  host=$URL_HOST port=$URL_PORT
  where=${host:-local socket}:$port
  [[ $CHECKED == *" pg:$where "* ]] && return 0
  CHECKED+="pg:$where "
  if ! pg_listening "$host" "$port"; then
    if is_local_host "$host"; then
      start_local_postgres "$label" "$port"
    else
      say "$label: PostgreSQL at $where is not local: waiting for it, starting nothing"
    fi
  fi
  need_command pg_isready postgresql-client
  if ! pg_ready "$host" "$port" && ! wait_until pg_ready "$host" "$port"; then
    local clusters=""
    command -v pg_lsclusters >/dev/null 2>&1 && clusters=" (local clusters: $(pg_lsclusters -h | awk '{printf "%s%s/%s port %s %s", (NR > 1 ? "; " : ""), $1, $2, $3, $4}'))"
    die "$label: PostgreSQL at $where did not answer within ${WAIT_SECONDS}s$clusters"
  fi
  if is_local_host "$host" && [ -n "$host" ] && [ "$URL_USER" = postgres ]; then
    ensure_postgres_login "$label" "$host" "$port"
  fi
  say "$label: PostgreSQL at $where answers"
}

# ---------------------------------------------------------------- main

ensure_postgres "$DATABASE_URL" GALAXY_DATABASE_URL
[ -n "${GALAXY_TEST_POSTGRES_URL:-}" ] && ensure_postgres "$GALAXY_TEST_POSTGRES_URL" GALAXY_TEST_POSTGRES_URL
ensure_redis "$REDIS_URL" GALAXY_REDIS_URL
[ -n "${GALAXY_TEST_REDIS_URL:-}" ] && ensure_redis "$GALAXY_TEST_REDIS_URL" GALAXY_TEST_REDIS_URL

case "$BROKER_URL" in
  redis://* | rediss://* | unix://*) ensure_redis "$BROKER_URL" GALAXY_BROKER_URL ;;
  amqp://* | amqps://* | pyamqp://*)
    parse_url "$BROKER_URL" 5672
    wait_until tcp_open "${URL_HOST:-127.0.0.1}" "$URL_PORT" ||
      die "GALAXY_BROKER_URL: nothing answers at ${URL_HOST:-127.0.0.1}:$URL_PORT within ${WAIT_SECONDS}s (this script does not start RabbitMQ)"
    say "GALAXY_BROKER_URL: broker at ${URL_HOST:-127.0.0.1}:$URL_PORT accepts connections"
    ;;
  *) say "GALAXY_BROKER_URL: scheme of $BROKER_URL not checked" ;;
esac
exit 0
