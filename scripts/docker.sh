#!/usr/bin/env bash
# Make sure this machine can run a Docker Engine for galaxy_tasks: dockerd, containerd and
# runc from Debian's docker.io, and busybox-static, whose /bin/busybox is the whole rootfs of
# the test and demo engine image (no registry is reachable, so the image is built locally).
#
# Installs only what is missing (apt-get, as root). Starts nothing: the tests start a private
# dockerd of their own (tests/support/docker_engine.py), and so will the local run.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_command dockerd docker.io
need_command containerd docker.io
need_command runc docker.io
if [ ! -x /bin/busybox ] || ! /bin/busybox --list | grep -qx httpd; then
  say "a static busybox with httpd not found"
  apt_install busybox-static
fi
say "dockerd $(dockerd --version | sed 's/^Docker version //'), $(/bin/busybox | head -n 1 | cut -d' ' -f1-2)"
