"""A settable clock, for the services that read the time through a ``Callable[[], float]``.

The Game Master's relay, retention alarm and supervisor take their clock as a
plain callable; this one stands still unless a test moves it (or gives it a
``tick``), so time-based decisions happen exactly when the test says.
"""

from __future__ import annotations


class FakeClock:
    """A settable clock; with ``tick`` every reading moves it forward by that much."""

    def __init__(self, start: float = 0.0, *, tick: float = 0.0) -> None:
        self.now = start
        self.tick = tick
        self.readings = 0

    def __call__(self) -> float:
        value = self.now
        self.readings += 1
        self.now += self.tick
        return value

    def advance(self, seconds: float) -> None:
        self.now += seconds
