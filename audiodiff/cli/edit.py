"""`audiodiff vary`, `edit`, `inpaint` and `continue`: editing a file. Beside the edited clip goes a
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
    _parse_conditions,
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
    parser.add_argument(
        "--mode",
        choices=("noise", "inversion"),
        default="noise",
        help="noise: noise the input and sample back (SDEdit); inversion: turn the input's inverted noise "
        "towards fresh noise by --strength (keeps timing at small strengths)",
    )


@command("vary", "audio-to-audio variation of a file")(_vary_args)
def run_vary(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    edit = {"strength": args.strength, "mode": args.mode}
    return _write_edit(args, pipe.vary(args.input, **edit, request=_request(args, pipe)), edit)


def _invert_edit_args(parser: argparse.ArgumentParser) -> None:
    _edit_args(parser)
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="what the input is, e.g. --source label=flute --source pitch=67 (repeatable); the target is "
        "--label/--cond/--number as for generate",
    )
    parser.add_argument("--strength", type=float, default=1.0, help="how far to invert: 1 is all the way to noise")
    parser.add_argument(
        "--away-from-source",
        action="store_true",
        help="guide from the source conditions towards the target ones instead of from none",
    )


@command("edit", "edit a file by inversion: invert under its --source conditions, sample back under the target ones")(
    _invert_edit_args
)
def run_invert_edit(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    request = _request(args, pipe)
    source = _parse_conditions(args.source, pipe.condition_specs(), "--source")
    edit = {
        "source": source,
        "target": dict(request.conditions),
        "strength": args.strength,
        "away_from_source": args.away_from_source,
    }
    out = pipe.edit(args.input, **edit, steps=request.steps or 32, request=request)
    return _write_edit(args, out, edit)


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
