"""The README's configuration table is the settings: every variable, with the default the code has."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from galaxy_tasks.config import Settings, env_name

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(GALAXY_[A-Z0-9_]+)` \| ([^|]*) \|", re.MULTILINE)
DERIVED = {"GALAXY_BROKER_URL": "value of `GALAXY_REDIS_URL`"}
"""Defaults the table states as another setting's value."""


def documented() -> dict[str, str]:
    rows: dict[str, str] = {}
    for match in ROW.finditer(README.read_text()):
        rows.setdefault(match.group(1), match.group(2).strip())
    return rows


def agrees(doc: str, value: object) -> bool:
    shown = doc.strip("`")
    if isinstance(value, bool):
        return shown.lower() == ("true" if value else "false")
    if isinstance(value, int | float):
        try:
            return float(shown.replace(",", "")) == float(value)
        except ValueError:
            return False
    return shown == value or (value == "" and doc == "*(empty)*")


def test_every_setting_is_in_the_readme_table_with_the_default_the_code_has() -> None:
    rows = documented()
    defaults = Settings()
    wrong = []
    for field in dataclasses.fields(Settings):
        name = env_name(field.name)
        value = getattr(defaults, field.name)
        if name not in rows:
            wrong.append(f"{name} (default {value!r}) is not in the table")
        elif DERIVED.get(name) != rows[name] and not agrees(rows[name], value):
            wrong.append(f"{name}: the table says {rows[name]}, the code {value!r}")
    assert wrong == []


def test_every_variable_in_the_readme_table_is_a_setting() -> None:
    names = {env_name(field.name) for field in dataclasses.fields(Settings)}
    assert sorted(set(documented()) - names) == []


def test_the_check_sees_a_drifted_default() -> None:
    assert not agrees("`2000`", 500)
    assert agrees("`500`", 500)
    assert agrees("`1.0`", 1.0)
    assert agrees("*(empty)*", "")
    assert not agrees("`true`", False)
