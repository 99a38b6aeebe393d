"""Every name SPEC fixes or other processes rely on, in one place: streams, Redis keys, outboxes.

A producer, an operator's script and every layer of this package (domain,
adapters, the CLI, the tests and ``bench/``) spell these names by importing
them from here, so a rename is one edit and a typo is an import error.  The
statuses the contract names are enums beside the rules that use them
(:class:`~galaxy_tasks.domain.gamemaster.statuses.RuntimeStatus`,
:class:`~galaxy_tasks.domain.rtmanager.jobs.RecordStatus`) and reach SQL as
bound parameters of those enums.

Key arithmetic — a bridge's keys from its owner and stream, a Docker host's own
keys — lives here too, so the keys a process writes and the keys ``galaxy-tasks
status`` reads cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

# --------------------------------------------------------------------------- streams (SPEC §2, §3)

HEALTH_EVENTS_STREAM = "runtime:health_events"
"""Runtime Manager → Game Master: what the health observers saw."""
LOBBY_STREAM = "gm:lobby_events"
"""Game Master → Lobby: runtime snapshots of games whose status or health summary changed."""
START_JOBS_STREAM = "runtime:start_jobs"
STOP_JOBS_STREAM = "runtime:stop_jobs"
"""Lobby → Runtime Manager: start and stop jobs."""
JOB_RESULTS_STREAM = "runtime:job_results"
"""Runtime Manager → Lobby: one result per job."""


# --------------------------------------------------------------------------- stream bridges


@dataclass(frozen=True)
class BridgeKeys:
    """The Redis keys of one stream bridge (the offset key's form is SPEC §3's)."""

    offset: str
    last_by_partition: str
    lease: str
    progress: str
    replay_request: str
    """Set by ``galaxy-tasks replay`` to the offset to go back to; the bridge applies and deletes it."""
    repair_floor: str
    """Hash ``id``, ``entries_through``: the oldest entry a consumer's repair may still re-read, set by
    the repair while some partition is behind what was handed on (expires when no repair refreshes it)."""
    repair_scan: str
    """Hash ``through``, ``suspects``, ``replays``, ``replays_seen``: how far a consumer's repair has
    looked at the entries handed on, the partitions it found behind (checked again next time), and
    replays counted by the bridge against those the repair has seen: after a replay the next repair
    looks at every partition the bridge knows."""

    @classmethod
    def for_stream(cls, owner: str, label: str) -> BridgeKeys:
        base = f"{owner}:stream_bridge:{label}"
        return cls(
            offset=f"{owner}:stream_offsets:{label}",
            last_by_partition=f"{base}:last_entry_by_partition",
            lease=f"{base}:lease",
            progress=f"{base}:progress",
            replay_request=f"{base}:replay_request",
            repair_floor=f"{base}:repair_floor",
            repair_scan=f"{base}:repair_scan",
        )


HEALTH_EVENTS_BRIDGE_KEYS = BridgeKeys.for_stream("gamemaster", "health_events")
START_JOBS_BRIDGE_KEYS = BridgeKeys.for_stream("rtmanager", "start_jobs")
STOP_JOBS_BRIDGE_KEYS = BridgeKeys.for_stream("rtmanager", "stop_jobs")


# --------------------------------------------------------------------------- Runtime Manager state in Redis


def on_host(key: str, host: str) -> str:
    """A Docker host's own copy of a per-host key (``GALAXY_DOCKER_HOST_NAME``; empty: the only host)."""
    return f"{key}:{host}" if host else key


DOCKER_EVENTS_LEASE_KEY = "rtmanager:docker_events:lease"
"""The Docker events listener's lease (one per Docker host: :func:`on_host`)."""


def docker_events_lease_key(host: str) -> str:
    return on_host(DOCKER_EVENTS_LEASE_KEY, host)


DOCKER_EVENTS_POSITION_KEY = "rtmanager:docker_events:position"
"""Where the listener resumes reading Docker's events (per Docker host)."""
ORPHANS_KEY = "rtmanager:reconciler:orphans"
"""The reconciler's last list of managed containers without a record (per Docker host)."""
PROBE_STATES_KEY = "rtmanager:probe:states"
"""Each game's probe streaks."""
INSPECT_BASELINES_KEY = "rtmanager:inspect:baselines"
"""Each game's last inspect (restart count, start time): what the next inspect compares with."""
ACKED_RESTARTS_PREFIX = "rtmanager:inspect:acked_restarts"
"""Per container: restarts the events listener already reported, so the inspect does not report them again."""


def launch_marker_key(name: str) -> str:
    """Set while the supervisor's launch of singleton ``name`` is in flight (no pile of launches)."""
    return f"galaxy:supervisor:launching:{name}"


# --------------------------------------------------------------------------- outboxes


@dataclass(frozen=True)
class OutboxNames:
    """One outbox: its table, the per-game row that numbers and locks its rows, its stream and its mark."""

    table: str
    lock_table: str
    stream: str

    @property
    def label(self) -> str:
        """How logs and metrics name it: its table."""
        return self.table

    @property
    def mark_key(self) -> str:
        """Redis hash: per game, the last row appended (``seq:uid``)."""
        return f"{self.table.replace('.', ':')}:published_seq"


LOBBY_OUTBOX = OutboxNames("gamemaster.lobby_outbox", "gamemaster.health_event_cursors", LOBBY_STREAM)
"""GM → Lobby snapshots, numbered under the game's consumer cursor."""
HEALTH_EVENT_OUTBOX = OutboxNames("rtmanager.health_event_outbox", "rtmanager.health_snapshots", HEALTH_EVENTS_STREAM)
"""RTM → GM health events, numbered under the game's health snapshot row."""
JOB_RESULT_OUTBOX = OutboxNames("rtmanager.job_result_outbox", "rtmanager.game_jobs", JOB_RESULTS_STREAM)
"""RTM → Lobby job results, numbered under the game's job row (held by every job of the game)."""
OUTBOXES = (LOBBY_OUTBOX, HEALTH_EVENT_OUTBOX, JOB_RESULT_OUTBOX)

MIGRATION_LOCK = (0x67616C61, 1)
"""The PostgreSQL advisory lock (two int4 keys: "gala", 1) every ``galaxy-tasks migrate`` holds while it
upgrades or downgrades the schemas, so hosts that all migrate at boot take turns."""
