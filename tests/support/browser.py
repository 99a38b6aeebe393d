"""A real browser for the tests: Debian's chromium, headless, rendering a page with its JavaScript."""

from __future__ import annotations

import shutil
import subprocess
import tempfile


def rendered_page(url: str, *, budget_ms: int = 8000) -> str:
    """The DOM of ``url`` after its scripts ran (Flower fills its tables from its API in JavaScript)."""
    binary = shutil.which("chromium")
    assert binary is not None, "chromium is missing: bash scripts/test-tools.sh installs it"
    with tempfile.TemporaryDirectory(prefix="galaxy-chromium-") as profile:
        done = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",  # as root
                "--disable-gpu",
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
