"""In-memory fakes of the ports of galaxy_tasks, shipped with the code they stand in for.

Like httpx's ``MockTransport``, they let anyone drive the real services — the
events listener, the reconciler, the inspect and probe tasks, the health
publisher — without Docker, PostgreSQL or Redis, with the semantics of the
real adapters (compare-and-swap on the record, down periods on the snapshot
row, one idempotency key per Docker event).  ``tests/`` uses them for the unit
and property tests; the adapters' own tests pin that the real ones agree.

Runtime Manager:

* :mod:`galaxy_tasks.testing.docker` — a Docker Engine with containers that
  crash, restart under a policy, die for good, vanish and are replaced, and
  the event log Docker would send about them;
* :mod:`galaxy_tasks.testing.store` — the ``rtmanager`` tables (records,
  snapshots with their down periods, idempotency keys), the health stream,
  the inspect baselines and probe streaks;
* :mod:`galaxy_tasks.testing.jobs` — the start/stop job queue, its streams
  and the engine containers the jobs drive;
* :mod:`galaxy_tasks.testing.job_dispatch` — where a game's jobs run (the
  queue's records) and the turns forwarded between Docker hosts' workers;
* :mod:`galaxy_tasks.testing.follow_ups` — the inspects, probes and relists a
  sweep or the events listener asks for;
* :mod:`galaxy_tasks.testing.scripted` — fixed answers for one sweep's test
  (running records, ``docker ps`` and inspect results, probe answers).

Game Master:

* :mod:`galaxy_tasks.testing.gamemaster` — the ``gamemaster`` tables and the
  health consumer's unit of work (a transaction on a copy; rollback drops
  everything, the parking included); a contract test runs the same checks
  against it and against PostgreSQL;
* :mod:`galaxy_tasks.testing.lobby` — the Lobby outbox relayed to
  ``gm:lobby_events`` (a snapshot number appended once, in turn);
* :mod:`galaxy_tasks.testing.order_repair` — what the order repair reads of
  the database and the stream;
* :mod:`galaxy_tasks.testing.bridge` — the stream, the bridge's state, its
  lease and the Celery dispatcher; the supervisor's view of the leases;
* :mod:`galaxy_tasks.testing.clock` — a clock that moves when a test says.

Oracle and harness, shared by the integration tests and ``bench/``:

* :mod:`galaxy_tasks.testing.seed001` — seed 001's consumer as a plain loop,
  the independent reference model (no logic shared with the domain);
* :mod:`galaxy_tasks.testing.cluster` — real ``celery`` processes of this app;
* :mod:`galaxy_tasks.testing.services` — PostgreSQL and Redis reached loudly,
  fresh and dropped databases, free loopback ports;
* :mod:`galaxy_tasks.testing.engines` — engine settings for a real Docker host.

Nothing here imports ``tests/`` or pytest: ``bench/`` uses this package too.
"""
