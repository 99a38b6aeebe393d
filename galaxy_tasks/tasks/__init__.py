"""Celery entrypoints: thin tasks that decode arguments, call a service and return JSON."""
