# shellcheck shell=bash disable=SC2034  # its variables are used by the scripts that source it
# Helpers shared by the scripts in this folder: sourced, never run on their own.
#
# GALAXY_ROOT is the repository root; `say`/`die` print with the calling
# script's name; `apt_install` installs Debian packages (one `apt-get update`
# per run, only when something is really missing); `parse_url` splits the
# URLs of GALAXY_REDIS_URL / GALAXY_DATABASE_URL into their parts.

GALAXY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_SCRIPT_NAME=${0##*/}

say() { printf '%s: %s\n' "$_SCRIPT_NAME" "$*"; }
die() {
  printf '%s: error: %s\n' "$_SCRIPT_NAME" "$*" >&2
  exit 1
}

_APT_UPDATED=0

# apt_install PACKAGE... — install Debian packages non-interactively.
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "need root to install $* (or install them yourself: apt-get install -y $*)"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$_APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    _APT_UPDATED=1
  fi
  say "apt-get install -y $*"
  apt-get install -y -qq --no-install-recommends "$@" || die "apt-get install $* failed"
}

# need_command COMMAND PACKAGE — install PACKAGE when COMMAND is not on PATH.
need_command() {
  command -v "$1" >/dev/null 2>&1 && return 0
  say "$1 not found"
  apt_install "$2"
  command -v "$1" >/dev/null 2>&1 || die "$2 is installed but $1 is still not on PATH"
}

# parse_url URL DEFAULT_PORT — sets URL_SCHEME, URL_USER, URL_HOST, URL_PORT.
# Handles scheme://[user[:password]@]host[:port][/path][?query], with [ipv6] hosts.
# An empty host stays empty (PostgreSQL: the local Unix socket).
parse_url() {
  local url=$1 default_port=$2 rest authority userinfo=""
  URL_SCHEME=${url%%://*}
  rest=${url#*://}
  authority=${rest%%[/?#]*}
  if [[ $authority == *@* ]]; then
    userinfo=${authority%@*}
    authority=${authority##*@}
  fi
  URL_USER=${userinfo%%:*}
  if [[ $authority == \[*\]* ]]; then
    URL_HOST=${authority#\[}
    URL_HOST=${URL_HOST%%\]*}
    URL_PORT=${authority#*\]}
    URL_PORT=${URL_PORT#:}
  elif [[ $authority == *:* ]]; then
    URL_HOST=${authority%%:*}
    URL_PORT=${authority##*:}
  else
    URL_HOST=$authority
    URL_PORT=""
  fi
  URL_PORT=${URL_PORT:-$default_port}
}

# is_local_host HOST — loopback (or empty: the local socket) means "ours to start".
is_local_host() {
  case "$1" in
    "" | localhost | 127.* | ::1) return 0 ;;
    *) return 1 ;;
  esac
}
