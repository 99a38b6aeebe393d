"""The one translation of the Docker SDK's failures, for every Docker adapter.

Two kinds of failure come out of the SDK.  Below HTTP — connection refused,
the socket gone, a timeout, a broken response — Docker did not answer: that is
always :class:`~galaxy_tasks.domain.errors.DockerUnavailable` (the caller may
retry).  An HTTP answer (``docker.errors.APIError``) is Docker's word, and
what it means depends on the operation: a container that is not there, an
image that does not exist, a start Docker refused.  So :func:`docker_errors`
passes answers through for the operation to judge, except that observers
(``answers_are_unavailable=True``: the health sweeps, the listener, the
reconciler) read a server error (5xx) as Docker being unwell, not as a fact
about a container.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions

from galaxy_tasks.domain.errors import DockerUnavailable


@contextmanager
def docker_errors(host: str, *, server_errors_are_unavailable: bool = False) -> Iterator[None]:
    """Translate what Docker did not answer into ``DockerUnavailable``; let its answers through."""
    try:
        yield
    except docker.errors.APIError as exc:
        server_error = exc.status_code is None or exc.status_code >= 500
        if server_errors_are_unavailable and server_error and not isinstance(exc, docker.errors.NotFound):
            raise DockerUnavailable(f"{where(host)}: {exc}") from exc
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise DockerUnavailable(f"{where(host)}: {exc}") from exc


def where(host: str) -> str:
    return host or "the default socket"


def explanation(exc: docker.errors.APIError) -> str:
    """Docker's own words for an answer."""
    return str(exc.explanation or exc)
