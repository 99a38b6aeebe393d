"""Probing engines over HTTP against a real Docker Engine, PostgreSQL and Redis.

The engine serves ``/healthz`` with a background busybox httpd on a loopback
port (host networking); ``killall httpd`` stops the serving without ending the
container, and ``httpd`` started again through ``docker exec`` brings it back.
"""

from __future__ import annotations

import json
from typing import cast

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.probe import ProbeThresholds
from galaxy_tasks.testing.services import free_loopback_port
from tests.support.rtm_rig import Rig, new_game_id, until

pytestmark = pytest.mark.integration

THRESHOLDS = ProbeThresholds(failure=3, success=2)


def _details(rig: Rig, game_id: str, event_type: str) -> list[dict[str, object]]:
    entries = cast(list[tuple[str, dict[str, str]]], rig.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
    return [json.loads(f["details"]) for _, f in entries if f["game_id"] == game_id and f["event_type"] == event_type]


def _snapshot(rig: Rig, game_id: str) -> tuple[str, str]:
    with rig.pipeline.engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, source FROM rtmanager.health_snapshots WHERE game_id = :g"), {"g": game_id}
        ).one()
    return row.status, row.source


def test_an_engine_whose_httpd_stops_fails_once_and_recovers_once_an_inspect_and_the_probes_agree(
    rig: Rig,
) -> None:
    game, port = new_game_id(), free_loopback_port()
    container_id = rig.start(game, endpoint=f"http://127.0.0.1:{port}", environment={"ENGINE_PORT": str(port)})
    until(lambda: rig.prober.probe(f"http://127.0.0.1:{port}")[0], "the engine to serve")
    rig.probe_sweep(THRESHOLDS)
    assert rig.event_types(game) == []

    failed_probes = REGISTRY.get_sample_value("galaxy_rtm_probes_total", {"result": "failed"}) or 0.0
    rig.client.containers.get(container_id).exec_run(["killall", "httpd"])
    for _ in range(5):
        rig.probe_sweep(THRESHOLDS)
    assert rig.event_types(game) == ["probe_failed"]
    assert (REGISTRY.get_sample_value("galaxy_rtm_probes_total", {"result": "failed"}) or 0.0) - failed_probes == 5
    (failed,) = _details(rig, game, "probe_failed")
    assert failed["consecutive_failures"] == 3
    assert f"127.0.0.1:{port}/healthz" in str(failed["last_error"])
    assert _snapshot(rig, game) == ("probe_failed", "probe")

    rig.client.containers.get(container_id).exec_run(["httpd", "-p", f"127.0.0.1:{port}", "-h", "/www"])
    until(lambda: rig.prober.probe(f"http://127.0.0.1:{port}")[0], "the engine to serve again")
    for _ in range(4):
        rig.probe_sweep(THRESHOLDS)
    assert rig.event_types(game) == ["probe_failed"], "probes alone do not end a down period: an inspect must agree"
    rig.sweep()  # the inspect completes the evidence the probes of this down period gathered
    rig.probe_sweep(THRESHOLDS)
    assert rig.event_types(game) == ["probe_failed", "probe_recovered"]
    assert _details(rig, game, "probe_recovered") == [{"prior_failures": 5}]
    assert _snapshot(rig, game) == ("healthy", "probe")


def test_an_engine_within_its_start_up_grace_is_not_probed(rig: Rig) -> None:
    game, port = new_game_id(), free_loopback_port()
    rig.start(game, endpoint=f"http://127.0.0.1:{port}", environment={"ENGINE_PORT": str(port)})
    plan = rig.probe_sweep(THRESHOLDS, grace_seconds=300)
    assert (plan.in_grace, plan.to_probe) == ([game], [])


def test_a_replaced_engine_does_not_inherit_the_failure_streak_and_recovery_counts_for_the_game(rig: Rig) -> None:
    game, port = new_game_id(), free_loopback_port()
    first = rig.start(game, endpoint=f"http://127.0.0.1:{port}", environment={"ENGINE_PORT": str(port)})
    rig.client.containers.get(first).exec_run(["killall", "httpd"])
    for _ in range(3):
        rig.probe_sweep(THRESHOLDS)
    assert rig.event_types(game) == ["probe_failed"]
    rig.client.containers.get(first).remove(force=True)
    second = rig.client.containers.run(
        "galaxy-engine-test:latest",
        detach=True,
        network_mode="host",
        labels={"galaxy.game_id": game},
        environment={"ENGINE_PORT": str(port)},
    )
    with rig.pipeline.engine.begin() as conn:
        conn.execute(
            text("UPDATE rtmanager.runtime_records SET current_container_id = :c WHERE game_id = :g"),
            {"c": second.id, "g": game},
        )
    until(lambda: rig.prober.probe(f"http://127.0.0.1:{port}")[0], "the new engine to serve")
    for _ in range(3):
        rig.probe_sweep(THRESHOLDS)
    assert rig.event_types(game) == ["probe_failed"], "a fresh streak: no second failure, no recovery without inspect"
    rig.sweep()
    for _ in range(2):
        rig.probe_sweep(THRESHOLDS)
    assert rig.event_types(game) == ["probe_failed", "probe_recovered"]
    assert rig.snapshot(game)[0] == "healthy"
