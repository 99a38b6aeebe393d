"""One error tree: every error raised on purpose is a ``GalaxyError``, each backend has its own
``…Unavailable``, and the Docker SDK's failures are translated by one rule."""

from __future__ import annotations

import docker.errors
import pytest
import requests

from galaxy_tasks.adapters.docker.errors import docker_errors
from galaxy_tasks.config import ConfigError
from galaxy_tasks.domain import errors
from galaxy_tasks.domain.rtmanager.jobs import InvalidJob, JobErrorCode, JobFailed, WrongDockerHost
from galaxy_tasks.service.jobs import ClaimLost


def api_error(status: int, cls: type[docker.errors.APIError] = docker.errors.APIError) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return cls("answer", response=response, explanation="docker says no")


def test_every_backend_has_its_own_unavailable_retried_as_transient_and_named_in_its_message() -> None:
    cases = {
        errors.RedisUnavailable: "redis",
        errors.PostgresUnavailable: "postgresql",
        errors.BrokerUnavailable: "broker",
        errors.DockerUnavailable: "docker",
    }
    for cls, backend in cases.items():
        exc = cls("connection refused")
        assert isinstance(exc, errors.BackendUnavailable)
        assert isinstance(exc, errors.TransientError)
        assert (exc.backend, str(exc)) == (backend, f"{backend} unavailable: connection refused")


def test_job_errors_sit_in_the_tree_where_their_retry_policy_says() -> None:
    assert isinstance(JobFailed(JobErrorCode.IMAGE_NOT_FOUND, "no such image"), errors.PermanentError)
    assert isinstance(InvalidJob("g", "no image_ref"), errors.MalformedEntry)
    assert isinstance(ClaimLost("job-1"), errors.TransientError)
    assert isinstance(WrongDockerHost("h2"), errors.GalaxyError)
    assert not isinstance(WrongDockerHost("h2"), errors.TransientError | errors.PermanentError)
    assert isinstance(ConfigError("GALAXY_X"), errors.GalaxyError)
    assert isinstance(errors.LocalRunFailed("no dockerd"), errors.GalaxyError)


@pytest.mark.parametrize(
    "failure",
    [requests.exceptions.ConnectionError("refused"), docker.errors.DockerException("no socket"), OSError("gone")],
)
def test_docker_not_answering_is_docker_unavailable_naming_the_host(failure: Exception) -> None:
    with pytest.raises(errors.DockerUnavailable, match=r"unix:///x\.sock"), docker_errors("unix:///x.sock"):
        raise failure


def test_dockers_answers_pass_to_the_operation_that_judges_them() -> None:
    for status in (400, 404, 409, 500):
        with pytest.raises(docker.errors.APIError), docker_errors(""):
            raise api_error(status)


def test_for_observers_a_server_error_is_unavailable_and_a_client_answer_is_not() -> None:
    with pytest.raises(errors.DockerUnavailable), docker_errors("", server_errors_are_unavailable=True):
        raise api_error(500)
    with pytest.raises(docker.errors.NotFound), docker_errors("", server_errors_are_unavailable=True):
        raise api_error(404, docker.errors.NotFound)
    with pytest.raises(docker.errors.APIError) as caught, docker_errors("", server_errors_are_unavailable=True):
        raise api_error(409)
    assert not isinstance(caught.value, errors.GalaxyError)
