"""Health events: the seed-000 snapshot mapping, the SPEC's fields and details per type."""

from __future__ import annotations

import json

import pytest

from galaxy_tasks.domain.health_events import HealthEventType
from galaxy_tasks.domain.rtmanager.health import (
    HealthEvent,
    InvalidHealthEvent,
    SnapshotSource,
    SnapshotStatus,
    validate_event,
)

AT = 1_700_000_000_000

EVERY_TYPE = {
    HealthEventType.CONTAINER_STARTED: HealthEvent.container_started("g1", "c1", AT, image_ref="engine:1"),
    HealthEventType.CONTAINER_EXITED: HealthEvent.container_exited("g1", "c1", AT, exit_code=3),
    HealthEventType.CONTAINER_OOM: HealthEvent.container_oom("g1", "c1", AT, exit_code=137),
    HealthEventType.CONTAINER_DISAPPEARED: HealthEvent.container_disappeared("g1", "c1", AT),
    HealthEventType.INSPECT_UNHEALTHY: HealthEvent.inspect_unhealthy(
        "g1", "c1", AT, restart_count=2, state="running", health=""
    ),
    HealthEventType.PROBE_FAILED: HealthEvent.probe_failed("g1", "c1", AT, consecutive_failures=3, last_error="boom"),
    HealthEventType.PROBE_RECOVERED: HealthEvent.probe_recovered("g1", "c1", AT, prior_failures=3),
}


@pytest.mark.parametrize(
    ("event_type", "status", "source"),
    [
        (HealthEventType.CONTAINER_STARTED, SnapshotStatus.HEALTHY, SnapshotSource.DOCKER_EVENT),
        (HealthEventType.CONTAINER_EXITED, SnapshotStatus.EXITED, SnapshotSource.DOCKER_EVENT),
        (HealthEventType.CONTAINER_OOM, SnapshotStatus.OOM, SnapshotSource.DOCKER_EVENT),
        (HealthEventType.CONTAINER_DISAPPEARED, SnapshotStatus.CONTAINER_DISAPPEARED, SnapshotSource.DOCKER_EVENT),
        (HealthEventType.INSPECT_UNHEALTHY, SnapshotStatus.INSPECT_UNHEALTHY, SnapshotSource.INSPECT),
        (HealthEventType.PROBE_FAILED, SnapshotStatus.PROBE_FAILED, SnapshotSource.PROBE),
        (HealthEventType.PROBE_RECOVERED, SnapshotStatus.HEALTHY, SnapshotSource.PROBE),
    ],
)
def test_each_event_type_maps_to_the_snapshot_status_and_source_of_seed_000(
    event_type: HealthEventType, status: SnapshotStatus, source: SnapshotSource
) -> None:
    snapshot = EVERY_TYPE[event_type].snapshot()
    assert (snapshot.status, snapshot.source) == (status, source)
    assert (snapshot.game_id, snapshot.container_id, snapshot.observed_at_ms) == ("g1", "c1", AT)


def test_stream_fields_are_the_five_of_the_spec_all_strings_details_as_json() -> None:
    fields = EVERY_TYPE[HealthEventType.INSPECT_UNHEALTHY].to_fields()
    assert fields == {
        "game_id": "g1",
        "container_id": "c1",
        "event_type": "inspect_unhealthy",
        "occurred_at_ms": str(AT),
        "details": '{"health":"","restart_count":2,"state":"running"}',
    }
    assert all(isinstance(v, str) for v in fields.values())


def test_details_are_the_empty_json_object_when_there_is_nothing_to_say() -> None:
    assert EVERY_TYPE[HealthEventType.CONTAINER_DISAPPEARED].to_fields()["details"] == "{}"
    with_reason = HealthEvent.container_disappeared("g1", "", AT, reason="reconciler: container gone")
    assert json.loads(with_reason.to_fields()["details"]) == {"reason": "reconciler: container gone"}


def test_container_id_may_be_empty_only_for_container_disappeared() -> None:
    HealthEvent.container_disappeared("g1", "", AT)
    with pytest.raises(InvalidHealthEvent, match="container_id"):
        HealthEvent.container_exited("g1", "", AT, exit_code=1)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (HealthEvent(" ", "c1", HealthEventType.CONTAINER_OOM, AT, {"exit_code": 137}), "game_id"),
        (HealthEvent("g1", "c1", HealthEventType.CONTAINER_OOM, 0, {"exit_code": 137}), "occurred_at_ms"),
        (HealthEvent("g1", "c1", HealthEventType.CONTAINER_OOM, AT, {}), "details.exit_code is required"),
        (HealthEvent("g1", "c1", HealthEventType.CONTAINER_OOM, AT, {"exit_code": "137"}), "must be int"),
        (HealthEvent("g1", "c1", HealthEventType.CONTAINER_OOM, AT, {"exit_code": True}), "must be int"),
        (HealthEvent("g1", "c1", HealthEventType.PROBE_RECOVERED, AT, {"prior_failures": 1, "x": 1}), "unexpected"),
        (
            HealthEvent("g1", "c1", HealthEventType.INSPECT_UNHEALTHY, AT, {"restart_count": 1, "state": "x"}),
            "details.health is required",
        ),
    ],
)
def test_an_event_breaking_the_contract_is_refused_saying_which_field(event: HealthEvent, message: str) -> None:
    with pytest.raises(InvalidHealthEvent, match=message):
        validate_event(event)
