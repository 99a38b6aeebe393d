#!/usr/bin/env bash
# What only the tests need besides the services and Docker: Debian's chromium (headless, for the
# Flower browser test), docker-compose (the compose file's `config` check), systemd-analyze (the
# systemd units' `verify`), faketime (a worker whose clock runs ahead) and RabbitMQ (the pipeline
# tests run on both brokers; a vhost per test). Installs only what is missing (apt-get, as root);
# starts RabbitMQ only when nothing answers on 127.0.0.1:5672.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_command chromium chromium
need_command docker-compose docker-compose
need_command systemd-analyze systemd
need_command rabbitmqctl rabbitmq-server
need_command faketime faketime
if ! timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null; then
  say "RabbitMQ does not answer on 127.0.0.1:5672: starting it"
  rabbitmq-server -detached
  deadline=$((SECONDS + 60))
  until timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null; do
    ((SECONDS < deadline)) || die "RabbitMQ did not start within 60 s"
    sleep 1
  done
fi
say "$(chromium --version 2>/dev/null | head -n 1), $(docker-compose version --short 2>/dev/null), $(systemd-analyze --version | head -n 1)"
