#!/usr/bin/env bash
# What only the tests need besides the services and Docker: Debian's chromium (headless, for the
# Flower browser test), docker-compose (the compose file's `config` check) and systemd-analyze
# (the systemd units' `verify`). Installs only what is missing (apt-get, as root); starts nothing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_command chromium chromium
need_command docker-compose docker-compose
need_command systemd-analyze systemd
say "$(chromium --version 2>/dev/null | head -n 1), $(docker-compose version --short 2>/dev/null), $(systemd-analyze --version | head -n 1)"
