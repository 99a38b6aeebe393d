"""requirements.txt is exactly what galaxy_tasks needs to run (the image installs it); the test tools
live in requirements-dev.txt.

Read against the installed distributions' metadata, so a dependency added to
setup.cfg without its pins, or a test tool slipped into the runtime set, fails here.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "mypy", "ruff", "hypothesis", "debugpy", "pytest-celery", "psutil", "pyyaml", "coverage"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        name, _, version = line.partition("==")
        assert version, f"{path.name}: {line!r} is not pinned with =="
        pins[normalized(name)] = version
    return pins


def runtime_closure() -> set[str]:
    """Every distribution galaxy_tasks' install_requires pulls in (extras followed, markers evaluated)."""
    found: dict[str, set[str]] = {}
    todo = [Requirement(r) for r in metadata.requires("galaxy_tasks") or [] if "extra ==" not in r]
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = normalized(requirement.name)
        extras = set(requirement.extras)
        if name in found and extras <= found[name]:
            continue
        found[name] = found.get(name, set()) | extras
        for text in metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            wanted = ["", *sorted(found[name])]
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in wanted):
                todo.append(Requirement(str(needed).split(";")[0]))
    return set(found)


def test_requirements_txt_pins_exactly_what_galaxy_tasks_needs_to_run() -> None:
    assert set(pinned(ROOT / "requirements.txt")) == runtime_closure()


def test_requirements_txt_holds_no_test_tool() -> None:
    assert set(pinned(ROOT / "requirements.txt")) & TEST_TOOLS == set()


def test_requirements_dev_txt_adds_the_tools_to_the_runtime_set_without_repinning_it() -> None:
    dev = ROOT / "requirements-dev.txt"
    assert "-r requirements.txt" in dev.read_text().splitlines()
    assert set(pinned(dev)) & set(pinned(ROOT / "requirements.txt")) == set()
    assert {"pytest", "mypy", "ruff", "hypothesis"} <= set(pinned(dev))


def test_every_pin_is_the_version_installed_here() -> None:
    pins = pinned(ROOT / "requirements.txt") | pinned(ROOT / "requirements-dev.txt")
    installed = {name: metadata.version(name) for name in pins}
    assert installed == pins
