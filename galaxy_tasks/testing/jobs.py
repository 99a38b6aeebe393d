"""In-memory fakes of the start/stop jobs' ports, shipped with the code they stand in for.

The job ladder (``service/jobs``, ``service/job_repair``, ``service/job_handoff``)
decides from a per-game queue, a claim fenced by its epoch, the streams'
"not handed on yet", and Docker's word.  These fakes let anyone drive it
without PostgreSQL, Redis or Docker, with the semantics of the real adapters,
and put what a real rig cannot easily produce at a test's fingertips: a claim
lost between the mark and the commit, a claim that ages past its bound, a job
message lost for good, Docker unreachable for exactly as long as wanted, a
redelivery racing its own answer.  ``tests/`` uses them for the unit tests;
the adapters' integration tests pin that the real ones agree.

* :class:`FakeJobQueue` — ``JobQueue`` as ``adapters/postgres/jobs.py`` is:
  ``rtmanager.job_queue``, ``game_jobs`` (claim, epoch, applied key),
  ``runtime_records``, ``operation_log`` and the two outboxes, on a clock
  (:attr:`FakeJobQueue.now`) the test moves;
* :class:`FakeJobStreams` — ``JobStreams``: the streams' clock, and the job
  entries a bridge has not handed on yet, as the test declares them;
* :class:`FakeEngineContainers` — ``EngineContainers``: containers by name,
  every call logged, faults and hooks on the next call;
* :class:`FakeStreamOutbox` — ``StreamOutbox`` whose committed entries are on
  the stream at once;
* :func:`job_context` — a ``JobContext`` over them whose clock is the queue's
  and whose sleep moves it (nothing really sleeps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from galaxy_tasks.contract import JOB_RESULT_OUTBOX
from galaxy_tasks.domain.errors import DockerUnavailable, ValueRefused
from galaxy_tasks.domain.rtmanager.job_order import NO_ORDER, JobOrder, QueuedJob
from galaxy_tasks.domain.rtmanager.jobs import ContainerView, JobKind, JobResult, RecordStatus, RecordView
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.ports.jobs import Busy, Claim, ClaimedRecord, CommittedJob, EngineSpec, FinishedJob, StaleClaim
from galaxy_tasks.ports.outbox import OutboxEntry
from galaxy_tasks.service.jobs import EngineSettings, JobContext
from galaxy_tasks.testing.store import FakeHealthStream

START_SECONDS = 1_700_000_000.0
"""Where the fakes' clocks start (a plausible wall clock, so milliseconds look like real ones)."""

TEST_ENGINE_SETTINGS = EngineSettings(
    endpoint_template="http://{game_id}:8080",
    network="host",
    memory_limit="64m",
    cpus=1.0,
    restart_policy={"Name": "no"},
    pull_missing_image=False,
    stop_timeout_seconds=5,
)
"""Engine settings of :func:`job_context`: endpoints are ``http://{game_id}:8080``, stops wait 5 s, no pulls."""

NO_KEY = NO_ORDER
"""The applied order of a game no job was applied to yet (``game_jobs.applied_*`` default to 0, 0, '')."""

_TRANSITIONAL = frozenset({RecordStatus.STARTING.value, RecordStatus.STOPPING.value})


# --------------------------------------------------------------------------- the queue


@dataclass
class QueuedRow:
    """A ``rtmanager.job_queue`` row."""

    job: QueuedJob
    queued_at: float


@dataclass
class GameJobs:
    """A ``rtmanager.game_jobs`` row: the game's claim, its epoch, the applied key, the outbox heads."""

    claim_job_id: str | None = None
    claim_epoch: int = 0
    claimed_at: float | None = None
    claim_prev_status: str | None = None
    applied: JobOrder = NO_KEY
    result_seq: int = 0
    result_head: str = ""
    health_seq: int = 0
    health_head: str = ""


class FakeJobQueue:
    """``JobQueue`` in dicts, as ``PostgresJobQueue`` behaves; :attr:`now` (seconds) is PostgreSQL's ``now()``.

    Besides the port it offers what a test needs to set a scene or break it:
    :meth:`put_record`, :meth:`lose_claim` (the periodic pass cleared the claim
    meanwhile), :meth:`insert_queued` (a row queued behind enqueue's checks),
    :meth:`fail_next` (the next call of a method raises), :meth:`advance`.
    """

    def __init__(self, *, now: float = START_SECONDS) -> None:
        self.now = now
        self.records: dict[str, RecordView] = {}
        """``rtmanager.runtime_records`` by game id."""
        self.queue: dict[str, QueuedRow] = {}
        """``rtmanager.job_queue`` by job id."""
        self.games: dict[str, GameJobs] = {}
        """``rtmanager.game_jobs`` by game id (a row appears at the first claim attempt with a job queued)."""
        self.log: dict[str, JobResult] = {}
        """``rtmanager.operation_log``: the result of each answered job, by job id."""
        self.finished: list[FinishedJob] = []
        """Every log row written, in commit order (outside-game ones included)."""
        self.results: list[OutboxEntry] = []
        """The job result outbox: every result committed for a game, in commit order."""
        self.health: list[OutboxEntry] = []
        """The health event outbox: every ``container_started`` committed with a start."""
        self._faults: dict[str, BaseException] = {}
        self._uids = 0

    # --- the clock and the scene ---------------------------------------------------------------
    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Time passes (also the ``sleep`` of :func:`job_context`)."""
        self.now += seconds

    def put_record(self, game_id: str, record: RecordView) -> None:
        self.records[game_id] = record

    def queued(self, game_id: str) -> list[str]:
        """Job ids of the game's queue, in the order they are taken."""
        rows = sorted((r.job.key, r.job.job_id) for r in self.queue.values() if r.job.game_id == game_id)
        return [job_id for _, job_id in rows]

    def claim_of(self, game_id: str) -> tuple[str | None, int]:
        """``(claim job id, epoch)`` of the game (``(None, 0)`` for a game never claimed)."""
        game = self.games.get(game_id)
        return (None, 0) if game is None else (game.claim_job_id, game.claim_epoch)

    def applied(self, game_id: str) -> JobOrder:
        game = self.games.get(game_id)
        return NO_KEY if game is None else game.applied

    def results_of(self, game_id: str) -> list[dict[str, str]]:
        """The fields of the game's committed results, in order."""
        return [dict(e.fields) for e in self.results if e.game_id == game_id]

    def lose_claim(self, game_id: str) -> bool:
        """The claim is cleared under its job (what the periodic pass does to an expired one): a new epoch.

        ``False`` when the game has no claim.
        """
        game = self.games.get(game_id)
        if game is None or game.claim_job_id is None:
            return False
        self._free(game)
        game.claim_epoch += 1
        return True

    def insert_queued(self, job: QueuedJob) -> None:
        """Queue ``job`` without :meth:`enqueue`'s checks: a re-enqueue that raced the job's own finish."""
        self.queue[job.job_id] = QueuedRow(job, self.now)

    def fail_next(self, method: str, exc: BaseException) -> None:
        """The next call of ``method`` (``"finish"``, ``"mark"`` …) raises ``exc`` before doing anything."""
        self._faults[method] = exc

    # --- JobQueue ------------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[QueuedJob]) -> int:
        self._fault("enqueue")
        added = 0
        for job in jobs:
            if job.job_id in self.queue or job.job_id in self.log:
                continue
            self.queue[job.job_id] = QueuedRow(job, self.now)
            added += 1
        return added

    def claim_next(self, game_id: str, *, bound_seconds: float) -> Claim | Busy | None:
        self._fault("claim_next")
        queued = self.queued(game_id)
        if queued and game_id not in self.games:
            self.games[game_id] = GameJobs()  # a game gets its row with its first queued job
        game = self.games.get(game_id)
        if game is None:
            return None  # nothing was ever queued for it: a turn creates no per-game state
        if game.claim_job_id is not None:
            live = game.claimed_at is not None and game.claimed_at > self.now - bound_seconds
            return Busy(game.claim_job_id + ("" if live else " (past its bound: the periodic pass clears it)"))
        if not queued:
            self._free(game)
            return None
        job = self.queue[queued[0]].job
        record = self.records.get(game_id)
        game.claim_job_id, game.claimed_at = job.job_id, self.now
        game.claim_prev_status = None if record is None else record.status
        game.claim_epoch += 1
        return Claim(job, game.claim_epoch, record, game.applied)

    def release(self, claim: Claim) -> None:
        self._fault("release")
        game = self._held(claim)
        if game is not None:
            self._free(game)

    def drop(self, claim: Claim) -> None:
        self._fault("drop")
        self.queue.pop(claim.job.job_id, None)
        game = self._held(claim)
        if game is not None:
            self._free(game)
        self._forget_if_no_history(claim.job.game_id)

    def mark(self, claim: Claim, status: RecordStatus) -> bool:
        self._fault("mark")
        game = self._held(claim)
        if game is None:
            return False
        game.claimed_at = self.now  # a mark renews the claim
        record = self.records.get(claim.job.game_id)
        if record is None:
            return False
        self.records[claim.job.game_id] = dataclasses.replace(record, status=status.value)
        return True

    def put_back(self, claim: Claim) -> bool:
        self._fault("put_back")
        game = self._held(claim)
        record = self.records.get(claim.job.game_id)
        if game is None or record is None or claim.record is None:
            return False
        self.records[claim.job.game_id] = dataclasses.replace(record, status=claim.record.status)
        return True

    def finish(self, claim: Claim, job: FinishedJob) -> CommittedJob | None:
        self._fault("finish")
        game_id = claim.job.game_id
        game = self._held(claim)
        if game is None:
            return None
        if job.job_id in self.log:  # operation_log's unique job id
            raise _duplicate_job(job.job_id)
        if job.record is not None:
            self.records[game_id] = job.record
        health: OutboxEntry | None = None
        if job.health_event is not None:
            game.health_seq += 1
            uid, prev = self._uid(), game.health_head
            game.health_head = uid
            health = OutboxEntry(game_id, game.health_seq, job.health_event.to_fields(), uid, prev)
            self.health.append(health)
        self.log[job.job_id] = job.result
        self.finished.append(job)
        game.result_seq += 1
        uid, prev = self._uid(), game.result_head
        game.result_head = uid
        entry = OutboxEntry(game_id, game.result_seq, job.result.to_fields(), uid, prev)
        self.results.append(entry)
        self.queue.pop(claim.job.job_id, None)
        if job.order is not None and job.order > game.applied:
            game.applied = job.order
        self._free(game)
        return CommittedJob(entry, health)

    def has_game(self, game_id: str) -> bool:
        self._fault("has_game")
        return game_id in self.records or game_id in self.games

    def finished_result(self, job_id: str) -> JobResult | None:
        self._fault("finished_result")
        return self.log.get(job_id)

    def known_jobs(self, job_ids: Sequence[str]) -> set[str]:
        self._fault("known_jobs")
        return {job_id for job_id in job_ids if job_id in self.queue or job_id in self.log}

    def log_outside_game(self, job: FinishedJob) -> tuple[JobResult, bool]:
        self._fault("log_outside_game")
        stored = self.log.get(job.job_id)
        if stored is not None:
            return stored, False
        self.log[job.job_id] = job.result
        self.finished.append(job)
        return job.result, True

    def stale_claims(self, *, bound_seconds: float, limit: int) -> list[StaleClaim]:
        self._fault("stale_claims")
        expired = sorted(
            (game.claimed_at, game_id)
            for game_id, game in self.games.items()
            if game.claim_job_id is not None
            and game.claimed_at is not None
            and game.claimed_at < self.now - bound_seconds
        )
        stale: list[StaleClaim] = []
        for claimed_at, game_id in expired[:limit]:
            game = self.games[game_id]
            assert game.claim_job_id is not None
            row = self.queue.get(game.claim_job_id)
            stale.append(
                StaleClaim(
                    game_id=game_id,
                    job_id=game.claim_job_id,
                    kind=JobKind.START if row is None else row.job.kind,
                    epoch=game.claim_epoch,
                    claimed_ms=int(claimed_at * 1000),
                    image_ref="" if row is None else row.job.image_ref,
                    record=self.records.get(game_id),
                    prev_status=game.claim_prev_status,
                )
            )
        return stale

    def clear_stale(self, stale: StaleClaim, record: RecordView | None) -> bool:
        self._fault("clear_stale")
        game = self.games.get(stale.game_id)
        if game is None or game.claim_job_id != stale.job_id or game.claim_epoch != stale.epoch:
            return False
        if record is not None:
            self.records[stale.game_id] = record
        self._free(game)
        game.claim_epoch += 1
        return True

    def unclaimed_games(self, *, queued_before_seconds: float, limit: int) -> list[str]:
        self._fault("unclaimed_games")
        oldest: dict[str, float] = {}
        for row in self.queue.values():
            game_id = row.job.game_id
            game = self.games.get(game_id)
            if row.queued_at >= self.now - queued_before_seconds or (game is not None and game.claim_job_id):
                continue
            oldest[game_id] = min(row.queued_at, oldest.get(game_id, row.queued_at))
        return [game_id for _, game_id in sorted((at, g) for g, at in oldest.items())][:limit]

    def transitional(self) -> list[ClaimedRecord]:
        self._fault("transitional")
        found: list[ClaimedRecord] = []
        for game_id, record in sorted(self.records.items()):
            if record.status not in _TRANSITIONAL:
                continue
            game = self.games.get(game_id)
            claimed_at = None if game is None else game.claimed_at
            found.append(
                ClaimedRecord(
                    game_id,
                    record.status,
                    None if game is None else game.claim_job_id,
                    None if claimed_at is None else int(claimed_at * 1000),
                )
            )
        return found

    # --- helpers -------------------------------------------------------------------------------
    def _held(self, claim: Claim) -> GameJobs | None:
        """The game's row while ``claim`` is still its claim (same job, same epoch)."""
        game = self.games.get(claim.job.game_id)
        if game is None or game.claim_job_id != claim.job.job_id or game.claim_epoch != claim.epoch:
            return None
        return game

    def _forget_if_no_history(self, game_id: str) -> None:
        """A game whose only job was dropped unanswered keeps no ``game_jobs`` row (``has_game`` is false again)."""
        game = self.games.get(game_id)
        if game is None or game.result_seq or game.claim_job_id is not None or game_id in self.records:
            return
        if any(r.job.game_id == game_id for r in self.queue.values()):
            return
        if any(f.result.game_id == game_id for f in self.finished):
            return
        del self.games[game_id]

    @staticmethod
    def _free(game: GameJobs) -> None:
        game.claim_job_id, game.claimed_at, game.claim_prev_status = None, None, None

    def _uid(self) -> str:
        self._uids += 1
        return f"uid-{self._uids:06d}"

    def _fault(self, method: str) -> None:
        exc = self._faults.pop(method, None)
        if exc is not None:
            raise exc


def _duplicate_job(job_id: str) -> ValueRefused:
    return ValueRefused("23505", f"duplicate key value violates unique constraint: job_id={job_id}")


# --------------------------------------------------------------------------- the streams


@dataclass(frozen=True)
class PendingEntry:
    """A job entry after its bridge's stored offset: not handed on yet."""

    job_id: str
    game_id: str
    key: StreamId


class FakeJobStreams:
    """``JobStreams``: the streams' clock and the entries not handed on yet, both set by the test.

    ``clock_ms`` defaults to a counter that moves one millisecond per
    :meth:`now_key`, so successive shell calls get increasing keys.
    """

    def __init__(self, clock_ms: Callable[[], int] | None = None, *, start_ms: int = int(START_SECONDS * 1000)) -> None:
        self._clock_ms = clock_ms
        self.next_ms = start_ms
        self.pending: list[PendingEntry] = []
        """Entries of every game after their bridge's offset, in stream order."""
        self.asked: list[tuple[str, StreamId]] = []
        """Every ``older_entries`` question: ``(game_id, key)``."""

    def not_handed_on(self, job_id: str, game_id: str, key: StreamId) -> None:
        """The entry of ``job_id`` is on its stream, after its bridge's offset."""
        self.pending.append(PendingEntry(job_id, game_id, key))
        self.pending.sort(key=lambda e: (e.key, e.job_id))

    def handed_on(self, job_id: str) -> None:
        """The bridge moved its offset past the entry of ``job_id``."""
        self.pending = [e for e in self.pending if e.job_id != job_id]

    def now_key(self) -> StreamId:
        if self._clock_ms is not None:
            return StreamId(self._clock_ms(), 0)
        key = StreamId(self.next_ms, 0)
        self.next_ms += 1
        return key

    def older_entries(self, game_id: str, key: StreamId, limit: int) -> list[JobOrder] | None:
        self.asked.append((game_id, key))
        before = [e for e in self.pending if e.key <= key]
        if len(before) > limit:
            return None
        return [JobOrder(e.key, e.job_id) for e in before if e.game_id == game_id]


# --------------------------------------------------------------------------- Docker


@dataclass
class FakeEngine:
    """A container under a game's name."""

    container_id: str
    state: str
    image_ref: str
    spec: EngineSpec | None = None
    """What a start created it from (``None``: put there by the test)."""


class FakeEngineContainers:
    """``EngineContainers`` in a dict of containers by name, every call logged in :attr:`calls`.

    ``calls`` holds ``(method, name)`` for ``find`` and ``replace`` and
    ``("stop_and_remove", container_id)``, each attempt logged, failed ones
    too: ``calls == []`` is "Docker was never touched".
    """

    def __init__(self) -> None:
        self.containers: dict[str, FakeEngine] = {}
        self.calls: list[tuple[str, str]] = []
        self.specs: list[EngineSpec] = []
        """What every successful ``replace`` created, in order."""
        self.stop_timeouts: list[float] = []
        self._faults: dict[str, tuple[BaseException, int | None]] = {}
        self._hooks: dict[str, list[Callable[[], object]]] = {}
        self._ids = 0

    # --- the scene -----------------------------------------------------------------------------
    def add(self, name: str, *, state: str = "running", image_ref: str = "galaxy/engine:1") -> str:
        """A container named ``name`` (``container_name(game_id)``) is there already; its id."""
        container_id = self._new_id()
        self.containers[name] = FakeEngine(container_id, state, image_ref)
        return container_id

    def set_state(self, name: str, state: str) -> None:
        self.containers[name].state = state

    def fail(self, method: str, exc: BaseException, *, times: int | None = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``exc`` (``None``: every call from now on)."""
        self._faults[method] = (exc, times)

    def unreachable(self, method: str, *, times: int | None = None) -> None:
        """Docker does not answer ``method``: ``DockerUnavailable(…)``."""
        self.fail(method, DockerUnavailable("connection refused (fake)"), times=times)

    def on(self, method: str, action: Callable[[], object]) -> None:
        """Run ``action`` at the start of the next call of ``method`` (before it acts or fails)."""
        self._hooks.setdefault(method, []).append(action)

    def touched(self) -> list[str]:
        """The methods called, in order."""
        return [method for method, _ in self.calls]

    # --- EngineContainers ----------------------------------------------------------------------
    def find(self, name: str) -> ContainerView | None:
        self._enter("find", name)
        found = self.containers.get(name)
        return None if found is None else ContainerView(found.container_id, found.state, found.image_ref)

    def replace(self, spec: EngineSpec) -> str:
        self._enter("replace", spec.name)
        self.containers.pop(spec.name, None)
        container_id = self._new_id()
        self.containers[spec.name] = FakeEngine(container_id, "running", spec.image_ref, spec)
        self.specs.append(spec)
        return container_id

    def stop_and_remove(self, container_id: str, timeout_seconds: float) -> None:
        self._enter("stop_and_remove", container_id)
        self.stop_timeouts.append(timeout_seconds)
        for name, engine in list(self.containers.items()):
            if engine.container_id == container_id:
                del self.containers[name]

    # --- helpers -------------------------------------------------------------------------------
    def _enter(self, method: str, arg: str) -> None:
        self.calls.append((method, arg))
        for action in self._hooks.pop(method, []):
            action()
        fault = self._faults.get(method)
        if fault is None:
            return
        exc, times = fault
        if times is not None:
            if times <= 1:
                del self._faults[method]
            else:
                self._faults[method] = (exc, times - 1)
        raise exc

    def _new_id(self) -> str:
        self._ids += 1
        return f"{self._ids:04d}" + "e" * 60


# --------------------------------------------------------------------------- the outboxes


class FakeStreamOutbox(FakeHealthStream):
    """``StreamOutbox`` whose committed entries are on the stream at once (:attr:`entries`)."""

    def __init__(self, label: str = JOB_RESULT_OUTBOX.label) -> None:
        super().__init__(label)
        self.published: list[OutboxEntry] = []
        """The committed rows appended after their commit."""

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        self.published.extend(entries)
        return super().publish_committed(entries)


# --------------------------------------------------------------------------- the context


def job_context(
    queue: FakeJobQueue, streams: FakeJobStreams, engines: FakeEngineContainers, **overrides: Any
) -> JobContext:
    """A ``JobContext`` over the fakes: fresh outboxes, test engine settings, a 2 s Docker retry window.

    Its clock is ``queue.now`` and its sleep moves it, so a retry's backoff
    ages claims as real time would, and nothing really sleeps.  ``overrides``
    replace any field (``results_outbox=…``, ``claim_seconds=…``, ``settings=…``).
    """
    fields: dict[str, Any] = {
        "queue": queue,
        "streams": streams,
        "engines": engines,
        "results_outbox": FakeStreamOutbox(),
        "health_outbox": FakeStreamOutbox(),
        "settings": TEST_ENGINE_SETTINGS,
        "docker_retry_seconds": 2.0,
        "claim_seconds": 300.0,
        "clock": queue.clock,
        "sleep": queue.advance,
    }
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"JobContext has no field {sorted(unknown)}")
    fields.update(overrides)
    return JobContext(**fields)
