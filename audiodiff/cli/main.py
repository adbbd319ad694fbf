"""The parser and the entry point."""

from __future__ import annotations

import argparse
import sys
import warnings

from audiodiff.cli.registry import COMMANDS
from audiodiff.errors import UserError

# --------------------------------------------------------------------------------------------


SAMPLING_COMMANDS = ("generate", "vary", "inpaint", "continue")


def build_parser(conditions_help: str | None = None) -> argparse.ArgumentParser:
    """The parser; `conditions_help` (the named model's conditions) closes the sampling
    commands' help."""
    parser = argparse.ArgumentParser(
        prog="audiodiff",
        description="Audio generation with diffusion models: train, generate, edit, vocode, evaluate.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, run, help_text) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(child)
        child.set_defaults(run=run)
        if conditions_help and name in SAMPLING_COMMANDS:
            child.epilog = conditions_help
            child.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _conditions_help(argv: list[str]) -> str | None:
    """With --help and --model/--checkpoint: the model's conditions, from their specs."""
    if not {"-h", "--help"} & set(argv):
        return None
    name = next(
        (argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--model", "--checkpoint")),
        None,
    )
    if name is None:
        return None
    from audiodiff.models.diffusion import describe_conditions

    try:
        specs = describe_conditions(name)
    except UserError as error:
        return f"(cannot read {name}'s conditions: {error})"
    lines = [f"conditions of {name} (--cond NAME=VALUE; --negative NAME=VALUE guides away):"]
    lines += [f"  {spec.describe()}" for spec in specs] or ["  none: it generates unconditionally"]
    return "\n".join(lines)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one `warning: ...` line on stderr, like the command line's other notices."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_conditions_help(argv)).parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
