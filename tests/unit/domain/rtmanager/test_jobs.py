"""Job entries, container names, replay decisions and job results (pure domain)."""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.rtmanager.jobs import (
    ContainerView,
    InvalidJob,
    JobErrorCode,
    JobResult,
    RecordView,
    StartJob,
    StopJob,
    WrongDockerHost,
    check_docker_host,
    container_name,
    decode_start_job,
    decode_stop_job,
    engine_endpoint,
    is_start_replay,
    is_stop_replay,
    place,
    start_conflict,
)
from galaxy_tasks.domain.stream_fields import UNUSABLE_FIELDS

RUNNING = RecordView("running", "c1", "img:1", "http://e")


def test_a_start_entry_decodes_to_its_game_and_image() -> None:
    assert decode_start_job({"game_id": "g-1", "image_ref": "registry:5000/eng/ine:1.2"}) == StartJob(
        "g-1", "registry:5000/eng/ine:1.2"
    )


def test_a_stop_entry_decodes_with_an_optional_reason() -> None:
    assert decode_stop_job({"game_id": "g-1"}) == StopJob("g-1", "")
    assert decode_stop_job({"game_id": "g-1", "reason": "finished"}) == StopJob("g-1", "finished")


@pytest.mark.parametrize("reason", ["orphan_cleanup", "cancelled", "finished", "admin_request", "timeout", ""])
def test_every_stop_reason_of_the_spec_enum_and_none_are_accepted(reason: str) -> None:
    assert decode_stop_job({"game_id": "g-1", "reason": reason}).reason == reason


@pytest.mark.parametrize("reason", ["test", "Finished", " finished", "finished ", "admin", "x" * 5000])
def test_a_stop_reason_outside_the_spec_enum_is_an_invalid_request_of_its_game(reason: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        decode_stop_job({"game_id": "g-1", "reason": reason})
    assert caught.value.game_id == "g-1"
    assert "admin_request" in caught.value.message
    assert len(caught.value.message) < 300  # a 5 kB reason is not echoed back whole


def test_a_start_conflicts_only_with_the_games_own_live_container_running_another_image() -> None:
    live_1 = ContainerView("c1", "running", "img:1")
    assert start_conflict(RUNNING, live_1, "img:1") is None  # the same image: a replay
    reason = start_conflict(RUNNING, live_1, "img:2")
    assert reason is not None
    assert "img:1" in reason
    assert "img:2" in reason
    assert start_conflict(RUNNING, ContainerView("c1", "restarting", "img:1"), "img:2") is not None
    assert start_conflict(RUNNING, ContainerView("c1", "exited", "img:1"), "img:2") is None  # dead: restarted
    assert start_conflict(RUNNING, ContainerView("c9", "running", "img:1"), "img:2") is None  # a stray: replaced
    assert start_conflict(RUNNING, None, "img:2") is None
    assert start_conflict(None, live_1, "img:2") is None
    stopped = RecordView("stopped", "c1", "img:1", "http://e")
    assert start_conflict(stopped, live_1, "img:2") is None


def test_what_the_live_container_runs_is_dockers_word_and_the_records_when_docker_does_not_say() -> None:
    assert start_conflict(RUNNING, ContainerView("c1", "running", "img:2"), "img:2") is None
    assert start_conflict(RUNNING, ContainerView("c1", "running", "img:2"), "img:1") is not None
    assert start_conflict(RUNNING, ContainerView("c1", "running", ""), "img:1") is None
    assert start_conflict(RUNNING, ContainerView("c1", "running", ""), "img:2") is not None


@pytest.mark.parametrize(
    ("fields", "game_id", "words"),
    [
        ({"image_ref": "img"}, "", "game_id is missing"),
        ({"game_id": "  ", "image_ref": "img"}, "", "game_id is missing"),
        ({"game_id": "g", "image_ref": ""}, "g", "image_ref is missing"),
        ({"game_id": "g", "image_ref": "two words"}, "g", "not a Docker image reference"),
        ({"game_id": "bad/id", "image_ref": "img"}, "bad/id", "breaks the game-id rule"),
        ({"game_id": "-lead", "image_ref": "img"}, "-lead", "breaks the game-id rule"),
        ({"game_id": "trail-", "image_ref": "img"}, "trail-", "breaks the game-id rule"),
        ({"game_id": "under_score", "image_ref": "img"}, "under_score", "breaks the game-id rule"),
        ({"game_id": "x" * 64, "image_ref": "img"}, "x" * 64, "breaks the game-id rule"),
        ({"game_id": "x" * 3000, "image_ref": "img"}, "", "no game can have it"),
    ],
)
def test_a_malformed_start_entry_says_what_is_wrong_and_names_its_game_when_it_has_one(
    fields: dict[str, str], game_id: str, words: str
) -> None:
    with pytest.raises(InvalidJob) as raised:
        decode_start_job(fields)
    assert raised.value.game_id == game_id
    assert words in raised.value.message


def test_an_id_breaking_the_rule_is_served_for_a_game_that_has_a_record_and_only_then() -> None:
    asked: list[str] = []

    def known(game_id: str) -> bool:
        asked.append(game_id)
        return game_id == "legacy_game.1"

    assert decode_stop_job({"game_id": "legacy_game.1"}, known=known) == StopJob("legacy_game.1", "")
    with pytest.raises(InvalidJob):
        decode_stop_job({"game_id": "new_game.1"}, known=known)
    assert decode_stop_job({"game_id": "x" * 63}, known=known) == StopJob("x" * 63, "")
    assert asked == ["legacy_game.1", "new_game.1"], "only ids breaking the rule are looked up"


def test_the_container_name_and_endpoint_follow_the_fixed_name_and_the_template() -> None:
    assert container_name("g-7") == "galaxy-game-g-7"
    assert engine_endpoint("http://galaxy-game-{game_id}:8080", "g-7") == "http://galaxy-game-g-7:8080"


def test_a_start_is_a_replay_only_when_the_recorded_container_is_live() -> None:
    assert is_start_replay(RUNNING, ContainerView("c1", "running"))
    assert is_start_replay(RUNNING, ContainerView("c1", "restarting"))
    assert not is_start_replay(RUNNING, ContainerView("c1", "exited"))  # died: a real restart
    assert not is_start_replay(RUNNING, None)
    assert not is_start_replay(RUNNING, ContainerView("c2", "running"))  # not the recorded one
    assert not is_start_replay(RecordView("stopped", "c1", "img", "e"), ContainerView("c1", "running"))
    assert not is_start_replay(None, ContainerView("c1", "running"))


def test_a_stop_is_a_replay_when_nothing_runs_under_the_name_of_a_stopped_or_unknown_game() -> None:
    assert is_stop_replay(None, None)
    assert is_stop_replay(RecordView("stopped", "", "img", "e"), None)
    assert not is_stop_replay(RecordView("stopped", "", "img", "e"), ContainerView("c9", "running"))
    assert not is_stop_replay(RUNNING, None)  # a running record whose container is gone: record it stopped
    assert not is_stop_replay(RecordView("disappeared", "c1", "img", "e"), None)


def test_a_job_result_carries_every_field_even_when_empty() -> None:
    assert JobResult.replay("g").to_fields() == {
        "game_id": "g",
        "outcome": "success",
        "container_id": "",
        "engine_endpoint": "",
        "error_code": "replay_no_op",
        "error_message": "",
    }
    failed = JobResult.failure("g", JobErrorCode.IMAGE_NOT_FOUND, "image x: not found")
    assert failed.to_fields()["outcome"] == "failure"
    assert failed.to_fields()["error_code"] == "image_not_found"


def test_a_failure_needs_a_failure_code_and_a_message() -> None:
    with pytest.raises(ValueError, match="failure code"):
        JobResult.failure("g", JobErrorCode.REPLAY_NO_OP, "x")
    with pytest.raises(ValueError, match="message"):
        JobResult.failure("g", JobErrorCode.INTERNAL_ERROR, "")


def test_a_game_is_placed_where_it_runs_already_else_on_the_host_running_fewest_games() -> None:
    hosts = ["dh1", "dh2", "dh3"]
    assert place("dh3", {"dh1": 0, "dh3": 9}, hosts) == "dh3"
    assert place("", {"dh1": 2, "dh2": 1, "dh3": 1}, hosts) == "dh2"  # ties: the first named
    assert place("", {}, hosts) == "dh1"
    assert place("gone", {"dh1": 1}, hosts) == "dh2"  # a host no longer listed does not keep it


def test_a_job_for_a_game_living_on_another_docker_host_is_refused_before_anything_is_done() -> None:
    elsewhere = RecordView("running", "c1", "img", "e", docker_host="dh2")
    with pytest.raises(WrongDockerHost) as raised:
        check_docker_host(elsewhere, "dh1")
    assert raised.value.host == "dh2"
    check_docker_host(elsewhere, "dh2")  # its own host
    check_docker_host(elsewhere, "")  # a single Docker host: no hosts to tell apart
    check_docker_host(RecordView("stopped", "", "img", "e", docker_host="dh2"), "dh1")  # nothing runs there


def test_a_job_whose_game_id_is_not_text_names_no_game_and_one_whose_other_field_is_not_names_it() -> None:
    with pytest.raises(InvalidJob) as no_game:
        decode_start_job({"image_ref": "engine:1", UNUSABLE_FIELDS: "game_id"})
    assert no_game.value.game_id == ""
    with pytest.raises(InvalidJob) as cut:
        decode_stop_job({"game_id": "g1", UNUSABLE_FIELDS: "reason"})
    assert (cut.value.game_id, cut.value.message) == ("g1", "reason is not UTF-8 text")
    with pytest.raises(InvalidJob, match="image_ref is not UTF-8 text"):
        decode_start_job({"game_id": "g1", UNUSABLE_FIELDS: "image_ref"})
