"""The composition root: every adapter is built here, and every task body is one call into it.

``resources()`` is this process's :class:`Resources` (built on first use after
start or fork).  What the tasks call::

    resources().gamemaster      apply_health_event, apply_chunk, relay_lobby, repair_order,
                                health_events_bridge                      (bootstrap/gamemaster.py)
    resources().rtmanager       relay_health_events, inspect_sweep, inspect_container, probe_sweep,
                                probe_engine, reconcile, docker_events_listener, job_bridge
                                                                          (bootstrap/rtmanager.py)
    resources().job_dispatch    call, entry, take_turn, repair, bridge_dispatcher
                                                                          (service/job_dispatch.py)
    resources().supervise()     start the long-running singletons nobody holds

Each entry point binds a service function of ``galaxy_tasks/service`` to the
adapters of ``galaxy_tasks/adapters``; nothing else builds an adapter (the CLI
reads the same :class:`Resources`).
"""

from galaxy_tasks.bootstrap.root import Resources, forget_resources, resources

__all__ = ["Resources", "forget_resources", "resources"]
