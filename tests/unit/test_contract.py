"""The contract module spells SPEC's fixed names exactly (SPEC §3's streams and stored offsets), and its
key arithmetic gives every Docker host and every bridge keys of their own."""

from __future__ import annotations

from galaxy_tasks import contract


def test_the_streams_are_the_ones_spec_fixes() -> None:
    assert (
        contract.HEALTH_EVENTS_STREAM,
        contract.LOBBY_STREAM,
        contract.START_JOBS_STREAM,
        contract.STOP_JOBS_STREAM,
        contract.JOB_RESULTS_STREAM,
    ) == ("runtime:health_events", "gm:lobby_events", "runtime:start_jobs", "runtime:stop_jobs", "runtime:job_results")


def test_the_stored_offsets_are_the_keys_spec_fixes() -> None:
    assert contract.HEALTH_EVENTS_BRIDGE_KEYS.offset == "gamemaster:stream_offsets:health_events"
    assert contract.START_JOBS_BRIDGE_KEYS.offset == "rtmanager:stream_offsets:start_jobs"
    assert contract.STOP_JOBS_BRIDGE_KEYS.offset == "rtmanager:stream_offsets:stop_jobs"


def test_no_two_bridges_and_no_two_keys_of_one_bridge_share_a_redis_key() -> None:
    bridges = (contract.HEALTH_EVENTS_BRIDGE_KEYS, contract.START_JOBS_BRIDGE_KEYS, contract.STOP_JOBS_BRIDGE_KEYS)
    keys = [key for bridge in bridges for key in vars(bridge).values()]
    assert len(keys) == len(set(keys)) == 7 * len(bridges)


def test_a_docker_hosts_keys_are_its_own_and_a_single_host_keeps_the_plain_key() -> None:
    assert contract.docker_events_lease_key("") == contract.DOCKER_EVENTS_LEASE_KEY
    assert contract.docker_events_lease_key("h1") == f"{contract.DOCKER_EVENTS_LEASE_KEY}:h1"
    assert contract.on_host(contract.ORPHANS_KEY, "h1") != contract.on_host(contract.ORPHANS_KEY, "h2")


def test_each_outbox_streams_to_its_contract_stream_and_is_named_by_its_table() -> None:
    streams = {outbox.label: outbox.stream for outbox in contract.OUTBOXES}
    assert streams == {
        "gamemaster.lobby_outbox": contract.LOBBY_STREAM,
        "rtmanager.health_event_outbox": contract.HEALTH_EVENTS_STREAM,
        "rtmanager.job_result_outbox": contract.JOB_RESULTS_STREAM,
    }
    assert all(outbox.label == outbox.table for outbox in contract.OUTBOXES)


def test_the_outboxes_marks_are_the_keys_the_relays_have_always_used() -> None:
    assert [outbox.mark_key for outbox in contract.OUTBOXES] == [
        "gamemaster:lobby_outbox:published_seq",
        "rtmanager:health_event_outbox:published_seq",
        "rtmanager:job_result_outbox:published_seq",
    ]
