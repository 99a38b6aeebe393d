#!/usr/bin/env bash
# Lint, type checks and unit tests on the other Python versions galaxy_tasks supports (3.11-3.13):
#   bash scripts/other-pythons.sh [VERSION...]        (default: 3.11 3.12 3.13, minus .venv's own)
# Each interpreter is found as pythonX.Y on PATH or in pyenv's versions; each gets its own
# .venv-X.Y (requirements-dev.txt and the project, editable; reinstalled only when the
# requirements change, as scripts/venv.sh does). Runs ruff check, mypy --python-version X.Y and
# pytest tests/unit there. A version this machine does not carry is reported, and fails the run
# when GALAXY_REQUIRE_PYTHONS=1.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$GALAXY_ROOT" || exit 1

own=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(3.11 3.12 3.13)

find_python() { # find_python X.Y -> path of an interpreter of that version, or nothing
  local version=$1 candidate
  for candidate in "python$version" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$version".*/bin/"python$version" \
    "$HOME/.pyenv/versions/$version".*/bin/"python$version"; do
    if "$candidate" -c 'import sys' >/dev/null 2>&1; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"
      return 0
    fi
  done
  return 1
}

failed=0
missing=()
checked=()
for version in "${versions[@]}"; do
  [ "$version" = "$own" ] && continue
  python=$(find_python "$version") || {
    missing+=("$version")
    continue
  }
  venv=.venv-$version
  stamp=$venv/.installed
  fingerprint=$(cat requirements.txt requirements-dev.txt setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$fingerprint" ]; then
    say "creating $venv with $("$python" -V 2>&1) ($python)"
    rm -rf "$venv"
    "$python" -m venv "$venv" &&
      "$venv/bin/python" -m pip install --disable-pip-version-check -q -r requirements-dev.txt -e . &&
      printf '%s\n' "$fingerprint" >"$stamp" || {
      say "Python $version: installing requirements-dev.txt into $venv failed"
      failed=1
      continue
    }
  fi
  say "Python $version: ruff check, mypy, pytest tests/unit"
  "$venv/bin/ruff" check . &&
    "$venv/bin/mypy" --python-version "$version" &&
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit || {
    say "Python $version: FAILED"
    failed=1
    continue
  }
  checked+=("$version")
done

[ ${#checked[@]} -gt 0 ] && say "passed on Python ${checked[*]} (and .venv's $own in the main run)"
if [ ${#missing[@]} -gt 0 ]; then
  say "no interpreter found for Python ${missing[*]} (pythonX.Y on PATH or pyenv)"
  [ "${GALAXY_REQUIRE_PYTHONS:-0}" = 1 ] && failed=1
fi
exit "$failed"
