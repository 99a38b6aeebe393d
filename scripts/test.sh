#!/usr/bin/env bash
# The test command of the README (and of CI): bash scripts/test.sh [pytest arguments...]
#
# Brings up PostgreSQL and Redis (services.sh), installs dockerd and busybox-static when missing
# (docker.sh; the tests start their own private dockerd), chromium, docker-compose and
# systemd-analyze when missing (test-tools.sh), the virtualenv (venv.sh), then runs
#   ruff check . ; ruff format --check . ; mypy ; scripts/other-pythons.sh ; pytest [arguments]
# (other-pythons.sh: ruff, mypy and the unit tests on the other Python 3.11-3.13 found here).
# Every check runs even when an earlier one failed; the last line sums them up.
# Exits non-zero when anything failed, including pytest collecting no tests (exit 5).
# Without arguments pytest runs every test (tests/unit, tests/integration, tests/e2e).
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$GALAXY_ROOT" || exit 1

started=$SECONDS
summary() { # summary VERDICT DETAILS
  printf '\n%s: %s — %s (%ss)\n' "$_SCRIPT_NAME" "$1" "$2" "$((SECONDS - started))"
}

bash scripts/services.sh || {
  summary FAILED "PostgreSQL/Redis are not available (scripts/services.sh, see above); nothing was checked"
  exit 1
}
bash scripts/docker.sh || {
  summary FAILED "dockerd / busybox-static could not be installed (scripts/docker.sh, see above); nothing was checked"
  exit 1
}
bash scripts/test-tools.sh || {
  summary FAILED "chromium / docker-compose / systemd-analyze could not be installed (scripts/test-tools.sh); nothing was checked"
  exit 1
}
bash scripts/venv.sh || {
  summary FAILED "the virtualenv could not be prepared (scripts/venv.sh, see above); nothing was checked"
  exit 1
}
export VIRTUAL_ENV=$GALAXY_ROOT/.venv
export PATH=$VIRTUAL_ENV/bin:$PATH

results=()
failed=0
check() { # check LABEL COMMAND...
  local label=$1 rc
  shift
  printf '\n==> %s\n' "$*"
  "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    results+=("$label ok")
  else
    results+=("$label FAILED (exit $rc)")
    failed=1
  fi
}

check "ruff check" ruff check .
check "ruff format" ruff format --check .
check "mypy" mypy
check "other Pythons" bash scripts/other-pythons.sh

printf '\n==> pytest %s\n' "$*"
pytest_log=$(mktemp)
trap 'rm -f "$pytest_log"' EXIT
color=()
[ -t 1 ] && color=(--color=yes)
pytest "${color[@]}" "$@" 2>&1 | tee "$pytest_log"
rc=${PIPESTATUS[0]}
# pytest's last line, without its ===== frame and colours: "3 passed, 1 failed in 4.2s"
tally=$(sed -e 's/\x1b\[[0-9;]*m//g' "$pytest_log" | grep -E ' in [0-9.]+s' | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
case "$rc" in
  0) results+=("pytest ok${tally:+ ($tally)}") ;;
  5)
    results+=("pytest FAILED (no tests collected)")
    failed=1
    ;;
  *)
    results+=("pytest FAILED (exit $rc${tally:+: $tally})")
    failed=1
    ;;
esac

joined=$(printf '%s, ' "${results[@]}")
if [ "$failed" -eq 0 ]; then
  summary PASSED "${joined%, }"
  exit 0
fi
summary FAILED "${joined%, }"
exit 1
