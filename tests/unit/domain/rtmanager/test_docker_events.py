"""Where the Docker events listener stands: late events, duplicates, a first start at "now"."""

from __future__ import annotations

from galaxy_tasks.domain.rtmanager.docker_events import LATE_EVENT_NANOS, ContainerEvent, EventPosition

T = 1_700_000_000_000_000_000


def event(container: str, action: str, at: int) -> ContainerEvent:
    return ContainerEvent(container, f"g-{container}", action, at)


def test_an_event_delivered_after_a_later_one_is_still_handled_once() -> None:
    later, earlier = event("b", "die", T + 19), event("a", "die", T)
    position = EventPosition(T - 1, since_nano=T - 1).after(later)
    assert position.is_new(earlier)
    position = position.after(earlier)
    assert not position.is_new(earlier)
    assert not position.is_new(later)
    assert position.time_nano == T + 19


def test_an_event_handled_before_is_not_new_when_docker_sends_it_again_on_resume() -> None:
    first = event("a", "health_status: unhealthy", T)
    position = EventPosition(T, since_nano=T).after(first)
    assert not position.is_new(first)
    assert position.is_new(event("a", "die", T))  # same instant, another action


def test_events_older_than_the_late_window_of_the_newest_are_taken_as_handled() -> None:
    position = EventPosition(T, since_nano=T).after(event("a", "die", T + 3 * LATE_EVENT_NANOS))
    assert position.floor == T + 2 * LATE_EVENT_NANOS
    assert not position.is_new(event("b", "die", T + LATE_EVENT_NANOS))
    assert position.keys == frozenset({f"a:die:{T + 3 * LATE_EVENT_NANOS}"})  # older keys pruned


def test_a_first_start_at_now_leaves_earlier_events_to_the_reconciler() -> None:
    position = EventPosition(T)
    assert not position.is_new(event("a", "die", T - 1))
    assert position.is_new(event("a", "die", T))
