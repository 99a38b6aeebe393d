#!/usr/bin/env bash
# Create .venv with the system python3 (>= 3.11) and install the project into it:
#   pip install -r requirements-dev.txt -e .   (the runtime pins plus the test and lint tools)
# The install is skipped while requirements.txt, requirements-dev.txt, setup.cfg and pyproject.toml
# are unchanged since the last successful one (their hash is kept in .venv/.installed),
# so a second run takes well under a second. Delete .venv to start over.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$GALAXY_ROOT"

VENV=.venv
STAMP=$VENV/.installed

python_is_recent() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

if ! command -v python3 >/dev/null 2>&1; then
  say "python3 not found"
  apt_install python3 python3-venv python3-pip
fi
python_is_recent python3 || die "python3 is $(python3 -V 2>&1); galaxy_tasks needs Python >= 3.11"

if ! python_is_recent "$VENV/bin/python" || [ ! -x "$VENV/bin/pip" ]; then
  # Debian ships venv's ensurepip in python3-venv.
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  say "creating $VENV with $(python3 -V 2>&1) ($(command -v python3))"
  python3 -m venv --clear "$VENV" || die "python3 -m venv $VENV failed"
fi

fingerprint=$(cat requirements.txt requirements-dev.txt setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] && [ -x "$VENV/bin/galaxy-tasks" ]; then
  say "$VENV is up to date ($("$VENV/bin/python" -V 2>&1))"
  exit 0
fi

say "installing requirements-dev.txt and galaxy_tasks (editable) into $VENV"
rm -f "$STAMP"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r requirements-dev.txt -e . ||
  die "pip install -r requirements-dev.txt -e . failed"
printf '%s\n' "$fingerprint" >"$STAMP"
say "$VENV is ready ($("$VENV/bin/python" -V 2>&1))"
