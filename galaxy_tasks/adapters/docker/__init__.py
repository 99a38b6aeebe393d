"""Adapters for the Docker Engine API (the Docker SDK for Python)."""
