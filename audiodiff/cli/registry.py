"""The command registry: each subcommand is `(add_arguments, run, help)` in `COMMANDS`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

COMMANDS: dict[
    str,
    tuple[
        Callable[[argparse.ArgumentParser], None],
        Callable[[argparse.Namespace], int],
        str,
    ],
] = {}


def command(name: str, help: str):
    """Register `(add_arguments, run)` for subcommand `name`."""

    def register(add_arguments):
        def with_run(run):
            COMMANDS[name] = (add_arguments, run, help)
            return run

        return with_run

    return register
