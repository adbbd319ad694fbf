"""`audiodiff vary`, `inpaint` and `continue`: editing a file. Beside the edited clip goes a
JSON sidecar, as `audiodiff generate` writes: the model, the command, its edit arguments, the
input file and every sampling setting the call used (`out.settings`)."""

from __future__ import annotations

import argparse
import json
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


def _write_edit(args: argparse.Namespace, out, edit: dict) -> int:
    """Write the edited clip to `--out` and its settings sidecar beside it (`edit`: the keyword
    arguments the pipeline's edit method was called with)."""
    path = Path(args.out)
    _write_clips(out.audio, out.sample_rate, [path], args.plot)
    upsampler = args.upsampler or ("upsampler-44k" if args.upsample else None)
    record = {
        "model": str(args.checkpoint or args.model),
        "command": args.command,
        "input": str(args.input),
        "edit": edit,
        "settings": out.settings.to_dict(),
        **({"upsampler": upsampler} if upsampler else {}),
    }
    path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


def _vary_args(parser: argparse.ArgumentParser) -> None:
    _edit_args(parser)
    parser.add_argument("--strength", type=float, default=0.5, help="0 returns the input, 1 ignores it")


@command("vary", "audio-to-audio variation of a file")(_vary_args)
def run_vary(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    edit = {"strength": args.strength}
    return _write_edit(args, pipe.vary(args.input, **edit, request=_request(args, pipe)), edit)


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
    edit = {"start": args.start, "end": args.end, "resample_steps": args.resample_steps}
    return _write_edit(args, pipe.inpaint(args.input, **edit, request=_request(args, pipe)), edit)


def _continue_args(parser: argparse.ArgumentParser) -> None:
    _edit_args(parser)
    parser.add_argument("--seconds", type=float, required=True, help="how much audio to add at the end")


@command("continue", "continue a file by N seconds")(_continue_args)
def run_continue(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    edit = {"seconds": args.seconds}
    return _write_edit(args, pipe.continue_(args.input, **edit, request=_request(args, pipe)), edit)
