"""`audiodiff demo`: the Gradio page."""

from __future__ import annotations

import argparse
import sys

from audiodiff.cli.generate import _adapter_scales, _add_device_arg, _check_device
from audiodiff.cli.registry import command
from audiodiff.errors import UserError


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="DIR",
        help="a checkpoint or run directory to serve beside the bundled models (repeatable)",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="PATH[:SCALE]",
        help="a LoRA/DoRA adapter run, served on the base it names as one more model, at SCALE "
        "(default 1; repeatable: one entry each)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (0.0.0.0 serves the local network)",
    )
    parser.add_argument("--port", type=_port, help="port (default: the first free one from 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    _add_device_arg(parser)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is a whole number from 1 to 65535")
    return port


@command("demo", "the Gradio page: generate, edit, compare vocoders, read about a model")(_demo_args)
def run_demo(args: argparse.Namespace) -> int:
    try:
        from audiodiff.demo import launch
    except ImportError as error:
        print(
            f"error: the demo needs gradio ({error}); pip install 'audiodiff[demo]'",
            file=sys.stderr,
        )
        return 2
    _check_device(args.device)
    try:
        launch(
            args.checkpoint,
            host=args.host,
            port=args.port,
            share=args.share,
            device=args.device,
            adapters=_adapter_scales(args.adapter),
        )
    except OSError as error:
        if "port" not in str(error):
            raise
        where = f"--port {args.port} is in use" if args.port else "no free port from 7860"
        raise UserError(f"{where} on {args.host}; pass another --port") from None
    return 0
