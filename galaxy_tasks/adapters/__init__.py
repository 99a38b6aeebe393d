"""Adapters: the ports implemented on PostgreSQL, Redis, the Celery broker (and later Docker)."""
