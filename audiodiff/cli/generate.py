"""`audiodiff generate`, and the model and sampling options every sampling command shares."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from audiodiff.cli.registry import command
from audiodiff.errors import UserError


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--checkpoint",
        help="a checkpoint directory or a run directory (its newest checkpoint)",
    )
    source.add_argument("--model", help="a bundled model name, e.g. digits")
    parser.add_argument(
        "--vocoder",
        help="a vocoder checkpoint directory or griffin_lim (default: the model's)",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="PATH[:SCALE]",
        help="a LoRA/DoRA adapter run on this model, at SCALE (default 1; repeatable: adapters add up)",
    )
    parser.add_argument(
        "--upsample",
        action="store_true",
        help="write 44.1 kHz through the bundled GAN upsampler (upsampler-44k; 16 kHz models)",
    )
    parser.add_argument("--upsampler", help="an upsampler checkpoint to write through (implies --upsample)")
    _add_device_arg(parser)
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="the U-Net's while sampling (default auto: bf16 for mel models where the hardware has it natively)",
    )


def _add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the models run: cpu, cuda, cuda:N or mps (default: cpu)",
    )


def _add_sampling_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cond",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a condition the model takes, e.g. --cond label=snare --cond velocity=110 (repeatable; "
        "`--help` with --model lists the model's conditions)",
    )
    parser.add_argument(
        "--negative",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a condition to guide away from",
    )
    parser.add_argument("--label", help="class label, e.g. seven (same as --cond label=...)")
    parser.add_argument("--text", help="text prompt (caption) (same as --cond text=...)")
    parser.add_argument("--negative-label", help="label to guide away from")
    parser.add_argument("--negative-text", help="text to guide away from")
    parser.add_argument(
        "--number",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="numeric condition, e.g. pitch=60 (repeatable; same as --cond)",
    )
    parser.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    from audiodiff.diffusion.samplers import SAMPLERS

    parser.add_argument(
        "--sampler",
        choices=sorted(SAMPLERS),
        help="default: the model's (ddpm for inpaint and continue)",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        help="classifier-free guidance scale (default: the model's)",
    )
    parser.add_argument(
        "--guide",
        nargs="+",
        metavar="CONDITION",
        help="guide towards these conditions at --guidance, e.g. --guide label; the others asked (curves, numbers) at "
        "--rest-guidance; --guide all: every asked condition at --guidance (off a model's default guide)",
    )
    parser.add_argument(
        "--rest-guidance",
        type=float,
        help="with --guide: the scale of the other asked conditions (default: the model's; 1 = unguided)",
    )
    parser.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="noise levels (0 = clean, 1 = pure noise) where guidance applies, e.g. 0.5 1 (default: the model's); "
        "with --guide, where the guided conditions get more than --rest-guidance",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="scale each clip's peak to 0.95 (default: the model's own level; a clip over full scale is scaled down)",
    )


def _parse_numbers(items: list[str]) -> dict[str, float]:
    from audiodiff.config import ConfigError

    numbers = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            numbers[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--number {item!r}: expected NAME=VALUE with a numeric value, e.g. pitch=60") from None
    return numbers


def _parse_conditions(items: list[str], specs: list, flag: str) -> dict:
    """`NAME=VALUE` strings -> condition values, each parsed by its condition's spec."""
    from audiodiff.models.conditioning import ConditionError

    by_name = {spec.name: spec for spec in specs}
    values = {}
    for item in items:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ConditionError(f"{flag} {item!r}: expected NAME=VALUE, e.g. {flag} label=kick")
        if name not in by_name:
            raise ConditionError(f"{flag} {name}: this model takes {sorted(by_name) or 'no conditions'}")
        values[name] = by_name[name].parse_text(text.strip())
    return values


def _load_pipeline(args: argparse.Namespace):
    from audiodiff.pipeline import Pipeline

    if not (args.checkpoint or args.model):
        raise UserError("which model? give --model NAME (a bundled one, e.g. digits) or --checkpoint DIR")
    _check_device(args.device)
    return Pipeline.from_pretrained(
        args.checkpoint or args.model,
        vocoder=args.vocoder,
        device=args.device,
        precision=args.precision,
        adapters=_adapter_scales(args.adapter),
        upsampler=args.upsampler or ("upsampler-44k" if args.upsample else None),
    )


def _adapter_scales(items: list[str]) -> dict[str, float]:
    """`--adapter PATH[:SCALE]` values -> {path: scale} (a path may itself hold a colon)."""
    scales = {}
    for item in items:
        path, colon, scale = item.rpartition(":")
        if not colon or not path:
            path, scale = item, "1"
        try:
            scales[path] = float(scale)
        except ValueError:
            scales[item] = 1.0
    return scales


def _request(args: argparse.Namespace, pipe=None):
    """The sampling options of a generate/edit command as one `GenerationRequest` (checked:
    the sampler name, steps, guidance and seed are refused here, before any sampling)."""
    from audiodiff.request import GenerationRequest

    specs = pipe.condition_specs() if pipe is not None else []
    conditions = _parse_conditions(args.cond, specs, "--cond")
    negatives = {f"negative_{k}": v for k, v in _parse_conditions(args.negative, specs, "--negative").items()}
    named = {
        "label": args.label,
        "text": args.text,
        "negative_label": args.negative_label,
    }
    named["negative_text"] = args.negative_text
    options = {**named, **_parse_numbers(args.number), **conditions, **negatives}
    request = GenerationRequest.of(
        steps=args.steps,
        sampler=args.sampler,
        guidance=args.guidance,
        guide=[] if args.guide == ["all"] else args.guide,
        rest_guidance=args.rest_guidance,
        guidance_interval=args.guidance_interval,
        seed=args.seed,
        normalize=args.normalize,
        progress=True,
        **{name: value for name, value in options.items() if value is not None},
    )
    return request.check()


def _write_settings(
    paths: list, out, model: str, duration: float | None, mix: dict | None = None, upsampler: str | bool = False
) -> None:
    """A JSON sidecar beside each clip: the model and every setting of the call that made it,
    and which clip of the batch it is, so `audiodiff generate --settings CLIP.json` makes the
    same clip again, bit for bit (batched arithmetic rounds differently at other batch sizes, so
    the whole batch is made again)."""
    import json

    settings = out.settings.to_dict()
    for index, path in enumerate(paths):
        record = {
            "model": model,
            "duration": duration,
            "n": len(paths),
            "index": index,
            "settings": settings,
            **({"mix": mix} if mix else {}),
            **({"upsampler": "upsampler-44k" if upsampler is True else upsampler} if upsampler else {}),
        }
        Path(path).with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _read_settings(path: str) -> dict:
    import json

    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        record["settings"]["sampler"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"--settings {path}: not a clip's settings sidecar ({error}); give the .json that "
            "`audiodiff generate` wrote beside a clip"
        ) from None
    return record


def _output_paths(out: str, count: int, stem: str = "sample") -> list[Path]:
    path = Path(out)
    if path.suffix.lower() == ".wav":
        if count == 1:
            return [path]
        return [path.with_name(f"{path.stem}_{i}.wav") for i in range(count)]
    return [path / f"{stem}_{i}.wav" for i in range(count)]


def _write_clips(audio, sample_rate: int, paths: list[Path], plot: bool, bits: int = 16) -> None:
    from audiodiff.plots import spectrogram_image

    for clip, path in zip(audio, paths):
        _save(path, clip, sample_rate, bits)
        if plot:
            spectrogram_image(clip, sample_rate, path.with_suffix(".png"), path.name)
        print(path)


def _save(path: Path, clip, sample_rate: int, bits: int = 16) -> None:
    """`save_audio`, with a path that cannot be written as a user error naming it."""
    from audiodiff.audio import AudioError, save_audio

    try:
        save_audio(path, clip, sample_rate, bits)
    except (OSError, RuntimeError) as error:
        raise AudioError(f"{path}: cannot write it ({error}); choose another --out") from None


def _generate_args(parser: argparse.ArgumentParser) -> None:
    _add_model_args(parser)
    _add_sampling_args(parser)
    parser.add_argument("--n", type=int, default=1, help="number of clips")
    parser.add_argument("--duration", type=float, help="seconds (default: the training length)")
    parser.add_argument("--out", required=True, help="a .wav file, or a directory for several clips")
    parser.add_argument(
        "--plot",
        action="store_true",
        help="also write a spectrogram PNG beside each wav",
    )
    parser.add_argument(
        "--bits",
        type=int,
        default=16,
        choices=(16, 24, 32),
        help="WAV sample format (32 = float)",
    )
    parser.add_argument(
        "--melody-from", metavar="FILE",
        help="follow the pitch contour and loudness of this recording (a model with control curves, e.g. notes)",
    )  # fmt: skip
    parser.add_argument(
        "--transpose",
        type=float,
        default=0.0,
        help="with --melody-from: move the melody by this many semitones",
    )
    parser.add_argument(
        "--mix-to",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="switch to these conditions part way (class mixing, e.g. --cond label=kick --mix-to label=snare)",
    )
    parser.add_argument(
        "--mix-at",
        type=float,
        default=0.5,
        help="with --mix-to: the noise level of the switch, 0 (all --cond) to 1 (all --mix-to)",
    )
    parser.add_argument(
        "--settings",
        metavar="CLIP.json",
        help="make a clip again from the settings sidecar written beside it (model, conditions, seed, sampler, ...); "
        "other sampling options are ignored",
    )


@command("generate", "generate audio from a trained model")(_generate_args)
def run_generate(args: argparse.Namespace) -> int:
    if args.settings:
        return _generate_again(args)
    pipe = _load_pipeline(args)
    request, duration = _request(args, pipe), args.duration
    if args.melody_from:
        import soundfile

        try:
            seconds = soundfile.info(args.melody_from).duration
        except RuntimeError as error:
            raise UserError(f"--melody-from {args.melody_from}: cannot read it as audio ({error})") from None
        window = pipe.default_duration()
        if duration is None:
            duration = min(seconds, window)
        clip = min(duration, seconds)
        audio, rate = soundfile.read(
            args.melody_from,
            dtype="float32",
            always_2d=True,
            frames=int(clip * soundfile.info(args.melody_from).samplerate),
        )
        curves = pipe.curves_from(audio.T, rate, transpose=args.transpose)
        request = dataclasses.replace(request, conditions={**request.conditions, **curves})
    mix = None
    if args.mix_to:
        mix = {"to": _parse_conditions(args.mix_to, pipe.condition_specs(), "--mix-to"), "at": args.mix_at}
        first = dict(request.conditions)
        request = dataclasses.replace(request, conditions={})
        out = pipe.mix(first, mix["to"], at=args.mix_at, n=args.n, duration=duration, request=request)
    else:
        out = pipe.generate(n=args.n, duration=duration, request=request)
    paths = _output_paths(args.out, args.n)
    _write_clips(out.audio, out.sample_rate, paths, args.plot, args.bits)
    _write_settings(paths, out, str(args.checkpoint or args.model), duration, mix, args.upsampler or args.upsample)
    return 0


def _generate_again(args: argparse.Namespace) -> int:
    """`generate --settings CLIP.json`: the model and settings of the sidecar, one clip."""
    from audiodiff.request import GenerationRequest

    record = _read_settings(args.settings)
    if record.get("command", "generate") != "generate":
        raise UserError(
            f"--settings {args.settings}: the sidecar of an `audiodiff {record['command']}` edit, not of a generated "
            f"clip; run `audiodiff {record['command']}` on {record.get('input', 'its input')} with its `edit` options"
        )
    if not (args.checkpoint or args.model):
        args.model = record["model"]
    args.upsampler = args.upsampler or record.get("upsampler")
    pipe = _load_pipeline(args)
    request = dataclasses.replace(GenerationRequest.from_settings(record["settings"]), progress=True)
    count, index = int(record.get("n", 1)), int(record.get("index", 0))
    if record.get("mix"):
        first = dict(request.conditions)
        request = dataclasses.replace(request, conditions={})
        mix = record["mix"]
        out = pipe.mix(first, mix["to"], at=mix["at"], n=count, duration=record.get("duration"), request=request)
    else:
        out = pipe.generate(n=count, duration=record.get("duration"), request=request)
    out.audio = out.audio[index : index + 1]
    paths = _output_paths(args.out, 1)
    _write_clips(out.audio, out.sample_rate, paths, args.plot, args.bits)
    return 0


def _check_device(name: str) -> None:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device; use cpu, cuda or cuda:N, or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: torch sees no CUDA device here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"--device {name}: there are {torch.cuda.device_count()} CUDA device(s) (cuda:0 ...); pick one of them"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {name}: MPS is not available here; use --device cpu")
