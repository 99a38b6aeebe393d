"""``galaxy-tasks migrate``."""

from __future__ import annotations

from galaxy_tasks.adapters.postgres.engine import safe_url
from galaxy_tasks.adapters.postgres.migrate import downgrade, upgrade
from galaxy_tasks.config import get_settings


def migrate_command(revision: str, *, down: bool = False) -> int:
    url = get_settings().database_url
    if down:
        downgrade(url, revision)
    else:
        upgrade(url, revision)
    print(f"schemas at {revision} on {safe_url(url)}")
    return 0
