"""``docs/configuration.md`` is the settings: the page as committed is what the generator makes of ``Settings`` now."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from galaxy_tasks.cli.config_docs import render, rows
from galaxy_tasks.config import Settings, env_name

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
DERIVED = {"GALAXY_BROKER_URL": "value of `GALAXY_REDIS_URL`"}
"""Defaults the page states as another setting's value."""


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


def test_the_committed_page_is_what_the_settings_generate() -> None:
    assert PAGE.read_text() == render(), (
        "docs/configuration.md is out of date: python -m galaxy_tasks.cli.config_docs > docs/configuration.md"
    )


def test_every_setting_has_a_meaning() -> None:
    assert [field.name for field in dataclasses.fields(Settings) if not field.metadata.get("doc", "").strip()] == []


def test_every_default_the_page_shows_is_the_one_the_code_has() -> None:
    defaults = Settings()
    shown = {name: default for name, default, _ in rows()}
    wrong = []
    for field in dataclasses.fields(Settings):
        name = env_name(field.name)
        value = getattr(defaults, field.name)
        if DERIVED.get(name) != shown[name] and not agrees(shown[name], value):
            wrong.append(f"{name}: the page says {shown[name]}, the code {value!r}")
    assert wrong == []


def test_the_broker_url_defaults_to_the_redis_url() -> None:
    assert Settings.from_env({"GALAXY_REDIS_URL": "redis://elsewhere:6379/3"}).broker_url == "redis://elsewhere:6379/3"


def test_the_check_sees_a_drifted_default() -> None:
    assert not agrees("`2000`", 500)
    assert agrees("`500`", 500)
    assert agrees("`1.0`", 1.0)
    assert agrees("`168`", 168.0)
    assert agrees("*(empty)*", "")
    assert not agrees("`true`", False)
