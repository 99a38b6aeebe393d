"""An in-memory ``FollowUps``: the inspects, probes and relists a sweep or the listener asked for, in order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FollowUp:
    task: str
    """``inspect``, ``probe`` or ``reconcile``."""
    args: tuple[str, ...] = ()
    down_seq: int = 0
    delay_seconds: float = 0.0
    expires_seconds: float | None = None


class FakeFollowUps:
    """Records every request as a :class:`FollowUp` in :attr:`sent`; nothing runs."""

    def __init__(self) -> None:
        self.sent: list[FollowUp] = []

    def inspect(self, game_id: str, container_id: str, *, down_seq: int = 0, expires_seconds: float | None) -> None:
        self.sent.append(FollowUp("inspect", (game_id, container_id), down_seq, 0.0, expires_seconds))

    def probe(
        self,
        game_id: str,
        container_id: str,
        endpoint: str,
        *,
        down_seq: int = 0,
        delay_seconds: float = 0.0,
        expires_seconds: float | None,
    ) -> None:
        self.sent.append(FollowUp("probe", (game_id, container_id, endpoint), down_seq, delay_seconds, expires_seconds))

    def reconcile(self, *, expires_seconds: float | None) -> None:
        self.sent.append(FollowUp("reconcile", expires_seconds=expires_seconds))
