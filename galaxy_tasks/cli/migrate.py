"""``galaxy-tasks migrate``."""

from __future__ import annotations

from galaxy_tasks.adapters.postgres.engine import safe_url
from galaxy_tasks.adapters.postgres.migrate import upgrade
from galaxy_tasks.config import get_settings


def migrate_command(revision: str) -> int:
    url = get_settings().database_url
    upgrade(url, revision)
    print(f"schemas at {revision} on {safe_url(url)}")
    return 0
