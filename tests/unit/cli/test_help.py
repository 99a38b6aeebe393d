"""Every subcommand and every option of ``galaxy-tasks`` says what it does, and its default where it has one."""

from __future__ import annotations

import argparse

import pytest

from galaxy_tasks.cli import build_parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (group,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


def test_every_subcommand_has_a_help_line() -> None:
    parser = build_parser()
    (group,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {choice.dest: bool(choice.help) for choice in group._choices_actions} == dict.fromkeys(group.choices, True)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    parser = subcommands()[name]
    text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"galaxy-tasks {name} {action.option_strings[0]} has no help"
        if action.default not in (None, False):
            assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)
