"""The `audiodiff` command line. Each subcommand is a module that registers `(add_arguments, run,
help)` in `COMMANDS`; `main` parses and runs.

    train     cli/train.py      generate  cli/generate.py   vary, inpaint, continue  cli/edit.py
    vocode, export  cli/vocode.py   data  cli/data.py       eval  cli/evaluate.py    demo  cli/demo.py
"""

# isort: off
# each module registers its commands; this order is the order `audiodiff --help` lists them in
from audiodiff.cli import train  # noqa: F401
from audiodiff.cli import generate  # noqa: F401
from audiodiff.cli import edit  # noqa: F401
from audiodiff.cli import vocode  # noqa: F401
from audiodiff.cli import data  # noqa: F401
from audiodiff.cli import evaluate  # noqa: F401
from audiodiff.cli import demo  # noqa: F401

# isort: on
from audiodiff.cli.main import build_parser, main
from audiodiff.cli.registry import COMMANDS

__all__ = ["COMMANDS", "build_parser", "main"]
