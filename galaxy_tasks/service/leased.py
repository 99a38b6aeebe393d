"""Running a long-running singleton's loop while it holds its lease (the bridge, the Docker listener)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.streams import Lease

log = get_logger(__name__)

LEASE_HELD_ELSEWHERE = "lease_held_elsewhere"


def run_leased(lease: Lease, loop: Callable[[], str], *, name: str, **context: object) -> str:
    """Take the lease, run ``loop`` (which returns its exit reason), always give the lease back.

    An unreleased lease (Redis unreachable at the end) expires by itself.
    """
    if not lease.acquire():
        return LEASE_HELD_ELSEWHERE
    log.info(f"{name}_started", holder=lease.holder, **context)
    reason = "error"
    try:
        reason = loop()
    finally:
        with contextlib.suppress(TransientError):
            lease.release()
        log.info(f"{name}_stopped", reason=reason, **context)
    return reason
