"""What the image installs (``pip install -r requirements.txt``, deploy/Dockerfile) holds no test tool, shown
by pip's own resolver without building the image: ``pip install --dry-run --report``.

Needs the package index the virtualenv was installed from (as ``scripts/venv.sh`` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.test_requirements import ROOT, TEST_TOOLS, normalized, pinned


def test_installing_the_images_requirements_resolves_to_exactly_the_runtime_pins(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    subprocess.run(
        [*command, "--report", str(report), "--disable-pip-version-check", "-r", str(ROOT / "requirements.txt")],
        check=True,
        timeout=300,
        capture_output=True,
    )
    would_install = {
        normalized(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert would_install == pinned(ROOT / "requirements.txt")
    assert set(would_install) & TEST_TOOLS == set()
