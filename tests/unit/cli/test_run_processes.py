"""``galaxy-tasks run``'s process list: what its command line asks for, one worker per name."""

from __future__ import annotations

from pathlib import Path

from galaxy_tasks.cli import build_parser
from galaxy_tasks.cli.run import child_commands


def _commands(*argv: str) -> dict[str, list[str]]:
    return child_commands(build_parser().parse_args(["run", "--no-flower", *argv]), Path(".run"))


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_a_newcomers_run_has_one_prefork_pool_worker_of_two_processes() -> None:
    commands = _commands()
    assert sorted(commands) == ["beat", "long-running-worker", "pool-worker"]
    pool = commands["pool-worker"]
    assert (_option(pool, "-P"), _option(pool, "-c"), _option(pool, "-n")) == ("prefork", "2", "pool@%h")


def test_several_pool_workers_get_distinct_node_names_and_the_same_queues() -> None:
    commands = _commands("--pool-workers", "3", "--pool", "threads", "--pool-concurrency", "8")
    pools = [argv for name, argv in commands.items() if name.startswith("pool-worker")]
    assert [_option(argv, "-n") for argv in pools] == ["pool@%h", "pool2@%h", "pool3@%h"]
    assert {(_option(argv, "-P"), _option(argv, "-c"), _option(argv, "-Q")) for argv in pools} == {
        ("threads", "8", _option(commands["pool-worker"], "-Q"))
    }
