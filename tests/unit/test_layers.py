"""The import rules of the layers, read from the source: the domain and the contract import no other layer,
the services no technology, and nothing but the composition root and the CLI reaches for it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "galaxy_tasks"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def modules(layer: str) -> list[Path]:
    root = PACKAGE / layer
    return sorted(root.rglob("*.py")) if root.is_dir() else [PACKAGE / f"{layer}.py"]


def offending(layer: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in modules(layer):
        bad = sorted(m for m in imports_of(path) if m.startswith(forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


OUTER = ("galaxy_tasks.ports", "galaxy_tasks.adapters", "galaxy_tasks.service", "galaxy_tasks.bootstrap")
TECHNOLOGY = ("celery", "kombu", "redis", "sqlalchemy", "docker", "httpx", "psycopg2")


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("contract", ("galaxy_tasks",)),
        ("domain", (*OUTER, "galaxy_tasks.tasks", "galaxy_tasks.long_running", *TECHNOLOGY)),
        ("long_running", ("galaxy_tasks.adapters", "galaxy_tasks.service", "galaxy_tasks.bootstrap")),
        ("service", ("galaxy_tasks.adapters", "galaxy_tasks.bootstrap", "galaxy_tasks.tasks", *TECHNOLOGY)),
        ("tasks", ("galaxy_tasks.adapters", "galaxy_tasks.service", *TECHNOLOGY[1:])),
    ],
)
def test_a_layer_imports_nothing_it_must_not(layer: str, forbidden: tuple[str, ...]) -> None:
    assert offending(layer, forbidden) == {}


def test_every_port_lives_in_the_ports_package() -> None:
    defining = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "(Protocol)" in path.read_text() and path.parent.name not in ("ports", "testing")
    )
    assert defining == []


def test_the_rule_reads_imports_it_is_meant_to_catch() -> None:
    assert "galaxy_tasks.contract" in imports_of(PACKAGE / "long_running.py")
    assert offending("bootstrap", ("galaxy_tasks.adapters",))  # the root does build adapters
