#!/usr/bin/env bash
# The run command of the README: the whole system on this machine, in the foreground.
#   bash scripts/run-local.sh [galaxy-tasks run options, e.g. --no-flower --pool-concurrency 4]
# Brings up PostgreSQL and Redis (services.sh), dockerd and busybox-static (docker.sh: installed
# when missing, nothing started) and the virtualenv (venv.sh), then `galaxy-tasks run --demo 3
# --watch`: migrates the schemas, uses the Docker Engine at DOCKER_HOST (or the default socket)
# or else starts a private dockerd of its own (images in .run/docker), builds the demo engine
# image, starts the pool worker, the long-running worker, beat, Flower (http://127.0.0.1:5555)
# and the metrics endpoint (http://127.0.0.1:9808/metrics), starts 3 demo games through
# runtime:start_jobs and shows the health changes as they happen (process logs in .run/logs).
# Ctrl-C stops everything it started, and nothing else.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$GALAXY_ROOT"

bash scripts/services.sh
bash scripts/docker.sh
bash scripts/venv.sh

if [ "$#" -eq 0 ]; then
  set -- --demo 3 --watch
fi
exec .venv/bin/galaxy-tasks run "$@"
