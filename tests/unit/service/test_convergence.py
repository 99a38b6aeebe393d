"""Convergence to Docker's truth on the shipped fakes (SPEC §5 "RTM: convergence").

Scenario tests pin each rule; the property test throws lost, duplicated and
reordered Docker events at crashes, restarts, deaths, removals and
replacements, and checks that once the faults stop, records, snapshots and
Game Master rows agree with Docker within the bound computed from the settings.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from galaxy_tasks.config import Settings
from tests.support.convergence_world import EventFaults, World, random_accident

LOSE_ALL = EventFaults(lose=1.0)


def _bound(world: World) -> float:
    b = world.settings.convergence_bounds()
    return max(b.missed_death_seconds, b.recovery_seconds)


def _types(world: World, game: str) -> list[str]:
    return [kind for kind, _ in world.stream.of_game(game)]


def test_a_crash_docker_restarts_is_published_once_and_the_game_recovers_without_a_failed_probe() -> None:
    world = World()
    container = world.start("g1")
    world.run_for(30)
    world.docker.crash(container, exit_code=2)
    world.run_for(world.settings.convergence_bounds().recovery_seconds)
    assert _types(world, "g1") == ["container_started", "container_exited", "probe_recovered"]
    assert world.store.records["g1"].status == "running"
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("running", "healthy")
    assert world.mismatches() == []


def test_a_death_no_event_reported_is_found_by_a_relist_once_with_its_exit_code() -> None:
    world = World()
    container = world.start("g1")
    world.run_for(20)
    world.docker.containers[container].max_restarts = 0
    world.docker.crash(container, exit_code=3)
    world.run_for(world.settings.convergence_bounds().missed_death_seconds, faults=LOSE_ALL)
    world.run_for(60)
    assert world.stream.of_game("g1")[1:] == [("container_exited", {"exit_code": 3})]
    assert world.store.records["g1"].status == "exited"
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("engine_unreachable", "exited")


def test_an_oom_kill_for_good_is_one_container_oom_with_137() -> None:
    world = World()
    container = world.start("g1", max_restarts=0)
    world.run_for(20)
    world.docker.crash(container, oom=True)
    world.run_for(40)
    assert world.stream.of_game("g1")[1:] == [("container_oom", {"exit_code": 137})]
    assert world.gm["g1"].engine_health == "oom"


def test_a_foreign_labelled_container_dying_next_to_a_healthy_game_says_nothing_and_is_an_orphan() -> None:
    world = World()
    world.start("g1")
    world.run_for(20)
    foreign = world.docker.run("g1", max_restarts=0, named=False)
    world.docker.crash(foreign, exit_code=1)
    world.run_for(2 * world.settings.reconcile_interval_seconds)
    assert _types(world, "g1") == ["container_started"]
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("running", "healthy")
    assert [o.container_id for o in world.orphans.orphans] == [foreign]


def test_a_deliberate_stop_publishes_nothing_and_the_next_start_is_healthy() -> None:
    world = World()
    world.start("g1")
    world.run_for(20)
    world.stop("g1")
    world.run_for(20)
    world.start("g1")
    world.run_for(20)
    assert _types(world, "g1") == ["container_started", "container_started"]
    assert world.orphans.orphans == []
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("running", "healthy")


def test_a_start_after_a_death_for_good_brings_the_game_back_by_itself() -> None:
    world = World()
    container = world.start("g1")
    world.run_for(20)
    world.docker.kill(container)
    world.run_for(20)
    assert world.gm["g1"].status == "engine_unreachable"
    world.start("g1")
    world.run_for(world.settings.convergence_bounds().recovery_seconds)
    assert _types(world, "g1")[-2:] == ["container_started", "probe_recovered"]
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("running", "healthy")


def test_a_helper_oom_in_a_serving_engine_leaves_the_game_running_and_healthy() -> None:
    world = World()
    container = world.start("g1")
    world.run_for(20)
    world.docker.oom_helper(container)
    world.run_for(40)
    assert _types(world, "g1") == ["container_started"]
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("running", "healthy")


def test_an_exited_container_is_reported_once_not_as_inspect_noise_every_sweep() -> None:
    world = World()
    container = world.start("g1", max_restarts=0)
    world.run_for(20)
    world.docker.crash(container, exit_code=3)
    world.run_for(120, faults=LOSE_ALL)
    assert _types(world, "g1") == ["container_started", "container_exited"]


def test_a_start_committing_while_the_reconciler_lists_docker_is_never_reported_disappeared() -> None:
    world = World()
    world.start("g1")
    world.run_for(20)
    list_docker = world.docker.list_managed

    def slow_list():  # type: ignore[no-untyped-def]
        listed = list_docker()
        world.start("g1")  # the start job commits between the reconciler's two reads
        return listed

    world.docker.list_managed = slow_list  # type: ignore[method-assign]
    world.reconcile()
    world.docker.list_managed = list_docker  # type: ignore[method-assign]
    assert "container_disappeared" not in _types(world, "g1")
    assert world.store.records["g1"].status == "running"


def test_a_daemon_restart_ends_every_game_in_its_true_state() -> None:
    world = World()
    world.start("dies")
    world.start("comes-back", always=True)
    world.run_for(20)
    world.docker.restart_daemon()
    world.run_for(_bound(world) + world.settings.reconcile_interval_seconds)
    assert world.mismatches() == []
    assert world.store.records["dies"].status == "exited"
    assert world.gm["dies"].status == "engine_unreachable"
    assert (world.store.records["comes-back"].status, world.gm["comes-back"].status) == ("running", "running")


def test_a_container_seen_dead_that_docker_runs_again_is_revived_and_the_game_recovers() -> None:
    world = World()
    container = world.start("g1", always=True)
    world.run_for(20)
    world.docker.kill(container)  # dockerd's shutdown stops it: the listener sees it dead for good
    world.run_for(2)
    assert (world.store.records["g1"].status, world.gm["g1"].status) == ("exited", "engine_unreachable")
    world.docker.start_again(container)  # dockerd's start brings the `always` container back
    world.run_for(world.settings.reconcile_interval_seconds + _bound(world))
    assert world.store.records["g1"].status == "running"
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("running", "healthy")
    assert _types(world, "g1") == ["container_started", "container_exited", "probe_recovered"]


def test_a_revived_container_that_dies_again_is_reported_with_its_new_death_when_events_arrive() -> None:
    world = World()
    container = world.start("g1", max_restarts=0, always=True)
    world.run_for(20)
    world.docker.crash(container, oom=True)  # dead for good: exited, container_oom
    world.run_for(2)
    assert (world.store.records["g1"].status, world.gm["g1"].engine_health) == ("exited", "oom")
    world.docker.start_again(container)  # the listener sees the start: the record is running again
    world.run_for(1)  # well before the next reconcile
    world.docker.crash(container, exit_code=3)
    world.run_for(2)
    assert _types(world, "g1")[-2:] == ["container_oom", "container_exited"]
    assert world.stream.of_game("g1")[-1] == ("container_exited", {"exit_code": 3})
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("engine_unreachable", "exited")


def test_a_revival_and_a_new_death_both_unseen_are_found_by_the_relist_from_the_exit_code() -> None:
    world = World()
    container = world.start("g1", max_restarts=0, always=True)
    world.run_for(20)
    world.docker.crash(container, oom=True)
    world.run_for(2)
    world.docker.start_again(container)
    world.run_for(1, faults=LOSE_ALL)
    world.docker.crash(container, exit_code=3)
    world.run_for(world.settings.convergence_bounds().missed_death_seconds, faults=LOSE_ALL)
    world.run_for(2)
    assert world.stream.of_game("g1")[-1] == ("container_exited", {"exit_code": 3})
    assert world.store.records["g1"].status == "exited"
    assert (world.gm["g1"].status, world.gm["g1"].engine_health) == ("engine_unreachable", "exited")
    assert world.mismatches() == []


def test_the_bounds_are_formulas_of_the_settings() -> None:
    b = Settings().convergence_bounds()
    assert b.missed_death_seconds == 15 + 10 + 1 + 2  # reconcile + Docker timeout + relay + GM slack
    assert b.recovery_seconds == max(10 + 10, 10 + 2 * 5 + 2) + 1 + 2  # inspect+timeout | grace+(1+1)*probe+timeout
    fast = Settings(reconcile_interval_seconds=2, docker_timeout_seconds=1, outbox_relay_interval_seconds=0.5)
    assert fast.convergence_bounds().missed_death_seconds == 2 + 1 + 0.5 + 2


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lose=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    duplicate=st.sampled_from([0.0, 0.3]),
    delay=st.sampled_from([0.0, 0.5]),
)
def test_whatever_events_were_lost_duplicated_or_reordered_the_view_converges_within_the_bound(
    seed: int, lose: float, duplicate: float, delay: float
) -> None:
    world = World(seed=seed)
    rng = random.Random(seed)
    games = [f"g{n}" for n in range(3)]
    for game in games:
        world.start(game, max_restarts=rng.choice([0, 1, 3]), always=rng.random() < 0.3)
    world.run_for(15)
    faults = EventFaults(lose=lose, duplicate=duplicate, delay=delay)
    for _ in range(rng.randint(1, 12)):
        random_accident(world, rng, games)()
        world.run_for(rng.randint(0, 8), faults=faults)
    for container in world.docker.containers.values():
        container.serving = True  # the faults stop: engines that run also serve
    world.run_for(2)  # Docker's own restarts (100 ms) and the delayed events are through
    world.run_for(_bound(world) + max(world.settings.inspect_interval_seconds, world.settings.probe_interval_seconds))
    assert world.mismatches() == []
    losses = [e["container_id"] for e in world.stream.entries if e["event_type"] == "container_disappeared"]
    assert len(losses) == len(set(losses)), "a lost container is reported once"
