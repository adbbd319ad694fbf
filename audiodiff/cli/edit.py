"""`audiodiff vary`, `inpaint` and `continue`: editing a file."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiodiff.cli.generate import (
    _add_model_args,
    _add_sampling_args,
    _load_pipeline,
    _request,
    _write_clips,
)
from audiodiff.cli.registry import command


def _edit_args(parser: argparse.ArgumentParser) -> None:
    _add_model_args(parser)
    parser.add_argument("input", help="the audio file to edit (resampled to the model's rate)")
    _add_sampling_args(parser)
    parser.add_argument("--out", required=True, help="output .wav")
    parser.add_argument(
        "--plot",
        action="store_true",
        help="also write a spectrogram PNG beside the wav",
    )


def _vary_args(parser: argparse.ArgumentParser) -> None:
    _edit_args(parser)
    parser.add_argument("--strength", type=float, default=0.5, help="0 returns the input, 1 ignores it")


@command("vary", "audio-to-audio variation of a file")(_vary_args)
def run_vary(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    out = pipe.vary(args.input, strength=args.strength, request=_request(args, pipe))
    _write_clips(out.audio, out.sample_rate, [Path(args.out)], args.plot)
    return 0


def _inpaint_args(parser: argparse.ArgumentParser) -> None:
    _edit_args(parser)
    parser.add_argument(
        "--start",
        type=float,
        required=True,
        help="start of the span to regenerate, seconds",
    )
    parser.add_argument(
        "--end",
        type=float,
        required=True,
        help="end of the span to regenerate, seconds",
    )
    parser.add_argument(
        "--resample-steps",
        type=int,
        default=2,
        help="RePaint resampling per step (more: better seams)",
    )


@command("inpaint", "regenerate a time span of a file, keeping the rest")(_inpaint_args)
def run_inpaint(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    out = pipe.inpaint(
        args.input,
        start=args.start,
        end=args.end,
        resample_steps=args.resample_steps,
        request=_request(args, pipe),
    )
    _write_clips(out.audio, out.sample_rate, [Path(args.out)], args.plot)
    return 0


def _continue_args(parser: argparse.ArgumentParser) -> None:
    _edit_args(parser)
    parser.add_argument("--seconds", type=float, required=True, help="how much audio to add at the end")


@command("continue", "continue a file by N seconds")(_continue_args)
def run_continue(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    out = pipe.continue_(args.input, seconds=args.seconds, request=_request(args, pipe))
    _write_clips(out.audio, out.sample_rate, [Path(args.out)], args.plot)
    return 0
