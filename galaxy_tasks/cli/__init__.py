"""The ``galaxy-tasks`` console script (SPEC §6): migrate, run, status, watch, replay, metrics."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from galaxy_tasks.config import ConfigError
from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.errors import BackendUnavailable, LocalRunFailed, MigrationInProgress, SchemaMissing


def package_version() -> str:
    """The installed distribution's version (``pyproject.toml``)."""
    try:
        return importlib.metadata.version("galaxy_tasks")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _DefaultsShown(argparse.HelpFormatter):
    """Help text ending with the option's default, when it has one worth saying (not a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _SubcommandParser(argparse.ArgumentParser):
    """Every subcommand's ``--help`` shows each option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsShown)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The command line, defaults included (tests derive ``galaxy-tasks run``'s process list from it)."""
    parser = argparse.ArgumentParser(prog="galaxy-tasks", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_SubcommandParser)

    migrate = commands.add_parser("migrate", help="create or upgrade the PostgreSQL schemas")
    migrate.add_argument("--revision", default="head", help="the Alembic revision to go to")
    migrate.add_argument("--downgrade", action="store_true", help="go back to --revision (a release rollback)")

    run = commands.add_parser("run", help="run the whole system on this machine in the foreground")
    run.add_argument("--no-flower", action="store_true", help="do not start Flower")
    run.add_argument("--no-migrate", action="store_true", help="skip the schema upgrade at start")
    run.add_argument(
        "--pool-concurrency", type=int, default=2, help="processes (threads with --pool threads) of each pool worker"
    )
    run.add_argument("--pool-workers", type=int, default=1, help="how many event pool workers to start")
    run.add_argument(
        "--pool",
        choices=("prefork", "threads"),
        default="prefork",
        help="the pool workers' pool: threads share transactions between tasks (group commit)",
    )
    run.add_argument("--flower-port", type=int, default=5555, help="Flower's port on 127.0.0.1")
    run.add_argument("--run-dir", default=".run", help="where beat's schedule, metrics and logs go")
    run.add_argument("--demo", type=int, default=0, metavar="N", help="start N demo games through the job stream")
    run.add_argument("--watch", action="store_true", help="show health changes; process logs go to RUN_DIR/logs")

    status = commands.add_parser("status", help="streams, offsets, lag, leases, outbox, games")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when something needs attention (a singleton nobody holds, a job past its claim bound, "
        "a bridge lagging past GALAXY_BACKLOG_THRESHOLD), listing what on stderr",
    )

    replay = commands.add_parser("replay", help="hand a stream's entries on again from an entry id (safe)")
    replay.add_argument(
        "--from", dest="from_id", required=True, metavar="ENTRY_ID", help="hand on again from this entry id on"
    )
    replay.add_argument("--stream", default=HEALTH_EVENTS_STREAM, help=f"{HEALTH_EVENTS_STREAM} or a job stream")
    replay.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the bridge to take it")

    watch = commands.add_parser("watch", help="follow runtime:health_events and gm:lobby_events, one line each")
    watch.add_argument("--from-start", action="store_true", help="show the streams from their first entry")
    watch.add_argument("--max-entries", type=int, default=None, help="stop after this many lines")
    watch.add_argument("--game", default=None, metavar="GAME_ID", help="only this game's entries")
    watch.add_argument(
        "--json", action="store_true", help="one JSON object per entry (stream, id, at, fields) on stdout"
    )

    health = commands.add_parser(
        "healthcheck",
        help="exit 0 when this node's worker is alive (its event loop touched GALAXY_HEALTH_DIR/alive lately), "
        "else 1 saying why; for container and process supervisors",
    )
    health.add_argument("--ready", action="store_true", help="also require readiness: connected and consuming")
    health.add_argument("--dir", default=None, help="default: GALAXY_HEALTH_DIR")
    health.add_argument(
        "--max-age", type=float, default=None, help="seconds; default: three GALAXY_HEALTH_INTERVAL_SECONDS"
    )

    metrics = commands.add_parser("metrics", help="serve the Prometheus metrics of this host's processes")
    metrics.add_argument("--port", type=int, default=None, help="default: GALAXY_METRICS_PORT (9808)")
    metrics.add_argument(
        "--cluster",
        action="store_true",
        help="serve the cluster's state instead, read at each scrape: bridge lag in entries and seconds, queue "
        "depths, singleton leases, outbox backlogs, parked entries, orphans, schema revision",
    )
    return parser


_CLI_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _healthcheck(args: argparse.Namespace) -> int:
    from pathlib import Path

    from galaxy_tasks.config import get_settings
    from galaxy_tasks.worker_health import check

    settings = get_settings()
    directory = args.dir or settings.health_dir
    if not directory:
        print("galaxy-tasks healthcheck: set GALAXY_HEALTH_DIR (or --dir) to the worker's folder", file=sys.stderr)
        return 2
    max_age = args.max_age if args.max_age is not None else 3 * settings.health_interval_seconds
    problem = check(Path(directory), ready=args.ready, max_age_seconds=max_age)
    if problem is not None:
        print(f"galaxy-tasks healthcheck: {problem}", file=sys.stderr)
        return 1
    return 0


def _set_up_logging() -> None:
    """Log lines on stderr in ``GALAXY_LOG_FORMAT`` at ``GALAXY_LOG_LEVEL`` (a bad setting: the defaults,
    and the command reports the setting itself)."""
    from galaxy_tasks import logs
    from galaxy_tasks.config import get_settings

    logging.basicConfig(level=logging.INFO, format=_CLI_LOG_FORMAT)
    try:
        settings = get_settings()
    except ConfigError:
        return
    handlers = logging.getLogger().handlers
    logs.install(handlers, log_format=settings.log_format, level=settings.log_level, fmt=_CLI_LOG_FORMAT)


def _metrics(args: argparse.Namespace) -> int:
    from galaxy_tasks.cli.metrics_server import metrics_command

    return metrics_command(args.port, cluster=args.cluster)


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"healthcheck": _healthcheck, "metrics": _metrics}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _set_up_logging()
    try:
        if args.command == "migrate":
            from galaxy_tasks.cli.migrate import migrate_command

            return migrate_command(args.revision, down=args.downgrade)
        if args.command == "run":
            from galaxy_tasks.cli.run import run_command

            return run_command(args)
        if args.command == "status":
            from galaxy_tasks.cli.status import status_command

            return status_command(as_json=args.json, check=args.check)
        if args.command == "replay":
            from galaxy_tasks.cli.replay import replay_command

            return replay_command(args.from_id, stream=args.stream, wait_seconds=args.wait)
        if args.command == "watch":
            from galaxy_tasks.cli.watch import watch_command

            return watch_command(
                from_start=args.from_start, max_entries=args.max_entries, game=args.game, as_json=args.json
            )
        handler = _HANDLERS.get(args.command)
        if handler is not None:
            return handler(args)
    except ConfigError as exc:
        print(f"galaxy-tasks: configuration error: {exc}", file=sys.stderr)
        return 2
    except SchemaMissing as exc:
        print(f"galaxy-tasks: {exc}\n  The database is not migrated: run `galaxy-tasks migrate`.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except MigrationInProgress as exc:
        print(f"galaxy-tasks: {exc}", file=sys.stderr)
        return 3
    except LocalRunFailed as exc:  # a private dockerd that would not start, a demo without Docker …
        print(f"galaxy-tasks: {exc}", file=sys.stderr)
        return 4
    except BackendUnavailable as exc:
        print(
            f"galaxy-tasks: {exc}\n  Is it running, and is the URL right? (see docs/configuration.md)", file=sys.stderr
        )
        return 3
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
