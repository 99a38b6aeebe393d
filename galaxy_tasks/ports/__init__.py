"""The ports of galaxy_tasks: what the services need from the outside world, all in this package.

One module per context — :mod:`~galaxy_tasks.ports.streams` (streams, bridges,
leases), :mod:`~galaxy_tasks.ports.outbox`, :mod:`~galaxy_tasks.ports.gamemaster`,
:mod:`~galaxy_tasks.ports.rtmanager` (health observation) and
:mod:`~galaxy_tasks.ports.jobs` (start/stop jobs).  Each port is a small
``typing.Protocol``; a data class that crosses a port lives beside it, or in
the domain when the rules use it too.  Adapters named after their technology
implement them (``adapters/postgres``, ``adapters/redis``, ``adapters/docker``,
``adapters/celery_dispatch``), :mod:`galaxy_tasks.testing` ships the in-memory
doubles, and no service module defines a port of its own.
"""
