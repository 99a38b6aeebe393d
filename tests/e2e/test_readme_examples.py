"""The docs' examples (README.md, docs/*.md), run: Python sessions as doctests on real workers, shell lines as is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.testing.cluster import REPO, Cluster, wait_until
from galaxy_tasks.testing.engines import TEST_ENGINE_ENV
from tests.support.pipeline import Pipeline
from tests.support.readme_examples import doc_files, examples

pytestmark = pytest.mark.e2e

DOCS = doc_files(REPO)


def test_the_docs_have_runnable_python_and_shell_examples() -> None:
    langs = [example.lang for doc in DOCS for example in examples(doc)]
    assert langs.count("python") >= 2
    assert "sh" in langs


def test_every_doc_example_runs_as_shown(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    cluster.env.update(TEST_ENGINE_ENV, DOCKER_HOST=docker_host)
    cluster.pool_worker("pool", concurrency=2)
    cluster.long_running_worker()
    cluster.beat()
    wait_until(lambda: pipeline.r.exists("gamemaster:stream_bridge:health_events:lease"), timeout=30, what="the bridge")
    pipeline.add_games({"g-1": "running"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_"))}
    env.update(cluster.env, PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    try:
        for doc in DOCS:
            for index, example in enumerate(examples(doc)):
                if example.lang == "python":
                    command = [sys.executable, "-m", "tests.support.readme_examples", str(doc), str(index)]
                else:
                    command = ["bash", "-euo", "pipefail", "-c", example.body]
                done = subprocess.run(
                    command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False
                )
                where = f"{doc.relative_to(REPO)} example at line {example.line}"
                assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"
    finally:
        for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
            container.remove(force=True)
