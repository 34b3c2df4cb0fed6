"""The ``speciosa`` command keeps one naming convention (see ``speciosa.cli``): every
subcommand's handler is ``cmd_<subcommand>`` in the module of its area, so a newcomer finds
the code of ``speciosa export fhir`` by searching for ``cmd_export_fhir``."""

from __future__ import annotations

import argparse

from speciosa.cli import COMMAND_MODULES, build_parser


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(words, parser) for every subcommand that runs a handler (not a group of formats)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield words, parser
        return
    for group in groups:
        for name, sub in group.choices.items():
            yield from _leaves(sub, (*words, name))


def test_it_names_every_handler_cmd_and_the_subcommand():
    leaves = list(_leaves(build_parser()))
    assert len(leaves) >= 20  # every command module registered, none skipped
    for words, parser in leaves:
        func = parser.get_default("func")
        expected = "cmd_" + "_".join(words).replace("-", "_")
        assert func.__name__ == expected, f"speciosa {' '.join(words)}: {func.__name__}"
        assert func.__module__ in COMMAND_MODULES
