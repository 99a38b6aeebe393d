#!/usr/bin/env bash
# What only the tests need besides the services and Docker: Debian's chromium (headless, for the
# Flower browser test), docker-compose (the compose file's `config` check), systemd-analyze (the
# systemd units' `verify`), faketime (a worker whose clock runs ahead), RabbitMQ (the pipeline
# tests run on both brokers; a vhost per test) and promtool (the alert rules' checks and unit tests;
# only that binary, taken out of Debian's prometheus package into /usr/local/bin, so no Prometheus
# server is installed or started). Installs only what is missing (apt-get, as root); starts
# RabbitMQ only when nothing answers on 127.0.0.1:5672.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_command chromium chromium
need_command docker-compose docker-compose
need_command systemd-analyze systemd
need_command rabbitmqctl rabbitmq-server
need_command faketime faketime
if ! command -v promtool >/dev/null 2>&1; then
  say "promtool not found: taking it out of Debian's prometheus package"
  workdir=$(mktemp -d)
  (cd "$workdir" && apt-get download prometheus >/dev/null 2>&1) ||
    { apt-get update -qq && (cd "$workdir" && apt-get download prometheus >/dev/null); } ||
    die "apt-get download prometheus failed"
  dpkg -x "$workdir"/prometheus_*.deb "$workdir/x" || die "cannot unpack the prometheus package"
  install -m 0755 "$workdir/x/usr/bin/promtool" /usr/local/bin/promtool || die "cannot install promtool"
  rm -rf "$workdir"
fi
if ! timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null; then
  say "RabbitMQ does not answer on 127.0.0.1:5672: starting it"
  rabbitmq-server -detached
  deadline=$((SECONDS + 60))
  until timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null; do
    ((SECONDS < deadline)) || die "RabbitMQ did not start within 60 s"
    sleep 1
  done
fi
say "$(chromium --version 2>/dev/null | head -n 1), $(docker-compose version --short 2>/dev/null), $(systemd-analyze --version | head -n 1), $(promtool --version 2>&1 | head -n 1)"
