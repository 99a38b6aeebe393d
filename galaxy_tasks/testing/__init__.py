"""In-memory fakes of the Runtime Manager's ports, shipped with the code they stand in for.

Like httpx's ``MockTransport``, they let anyone drive the real services — the
events listener, the reconciler, the inspect and probe tasks, the health
publisher — without Docker, PostgreSQL or Redis, with the semantics of the
real adapters (compare-and-swap on the record, down periods on the snapshot
row, one idempotency key per Docker event).  ``tests/`` uses them for the unit
and property tests; the adapters' own tests pin that the real ones agree.

* :mod:`galaxy_tasks.testing.docker` — a Docker Engine with containers that
  crash, restart under a policy, die for good, vanish and are replaced, and
  the event log Docker would send about them;
* :mod:`galaxy_tasks.testing.store` — the ``rtmanager`` tables (records,
  snapshots with their down periods, idempotency keys), the health stream,
  the inspect baselines and probe streaks.
"""
