"""An in-memory ``FollowUps``: the inspects, probes and relists a sweep or the listener asked for, in order."""

from __future__ import annotations

from galaxy_tasks.ports.rtmanager import FollowUp


class FakeFollowUps:
    """Records every request in :attr:`sent`; nothing runs."""

    def __init__(self) -> None:
        self.sent: list[FollowUp] = []

    def send(self, follow_up: FollowUp) -> None:
        self.sent.append(follow_up)
