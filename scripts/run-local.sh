#!/usr/bin/env bash
# The run command of the README: the whole system on this machine, in the foreground.
#   bash scripts/run-local.sh [galaxy-tasks run options, e.g. --no-flower --pool-concurrency 4]
# Brings up PostgreSQL and Redis (services.sh) and the virtualenv (venv.sh), then
# `galaxy-tasks run` migrates the schemas and starts the pool worker, the long-running
# worker, beat, Flower (http://127.0.0.1:5555) and the metrics endpoint
# (http://127.0.0.1:9808/metrics). Ctrl-C stops everything it started.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$GALAXY_ROOT"

bash scripts/services.sh
bash scripts/venv.sh

# ---- Docker Engine and demo engine containers: FUTURE WORK, goes here -----------
# When the Runtime Manager tasks land (start/stop jobs, inspect, probes, Docker
# events listener, reconciler), this is where the script makes sure a Docker Engine
# answers on DOCKER_HOST (installing/starting it when local and missing, like
# services.sh does for PostgreSQL and Redis), builds the demo engine image locally
# and starts the demo engine containers (galaxy-game-{game_id}, label
# galaxy.game_id={game_id}). Nothing here yet: the current system needs no Docker.
# -----------------------------------------------------------------------------------

exec .venv/bin/galaxy-tasks run "$@"
