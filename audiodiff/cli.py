"""The `audiodiff` command line. Each subcommand is a function registered in `COMMANDS`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from audiodiff.errors import UserError

__all__ = ["main", "COMMANDS"]

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


def command(name: str, help: str):
    """Register `(add_arguments, run)` for subcommand `name`."""

    def register(add_arguments):
        def with_run(run):
            COMMANDS[name] = (add_arguments, run, help)
            return run

        return with_run

    return register


# --------------------------------------------------------------------------------------------
# train


def _train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a recipe's config.yaml")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in train.out_dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to log.jsonl)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.steps=200 data.path=data/digits")


@command("train", "train a diffusion model, a vocoder or a mel autoencoder from a YAML config (torchrun-compatible)")(
    _train_args
)
def run_train(args: argparse.Namespace) -> int:
    from audiodiff.config import ConfigError, from_dict, load_yaml
    from audiodiff.train.trainer import Trainer

    data, out_dir = _run_config(args)
    kind = data.get("kind", "diffusion")
    tasks = _train_tasks()
    if kind not in tasks:
        raise ConfigError(f"{args.config}: kind={kind!r}; valid kinds are {sorted(tasks)}")
    config_cls, task_cls = tasks[kind]
    config = from_dict(config_cls, data)
    task = task_cls(config)
    trainer = Trainer(task, config.train, resume=args.resume, progress=not args.no_progress)
    if trainer.dist.is_main:
        _save_run_config(data, out_dir, args.resume)
        budget = (
            f", or for {config.train.max_minutes:g} minutes of wall-clock time in all"
            if config.train.max_minutes > 0
            else ""
        )
        print(f"training {out_dir} to step {config.train.steps}{budget}", file=sys.stderr)
    try:
        path = trainer.fit()
    finally:
        trainer.close()
    if not trainer.dist.is_main:
        return 0
    print(f"checkpoint: {path}")
    if trainer.stopped_by:
        again = f"audiodiff train --config {args.config} --resume"
        if out_dir != _out_dir(load_yaml(args.config)):
            again += f" train.out_dir={out_dir}"
        if trainer.stopped_by == "budget":
            again += f" train.max_minutes={2 * config.train.max_minutes:g}"
        print(f"stopped at step {trainer.step} of {config.train.steps}; continue with:\n    {again}", file=sys.stderr)
        return 130 if trainer.stopped_by == "SIGINT" else 0
    return 0


RUN_FILE = "run.yaml"  # in train.out_dir: the config as the run started, overrides applied


def _out_dir(data: dict) -> Path:
    """train.out_dir of a config dict (before it is checked)."""
    from audiodiff.config import TrainConfig

    return Path((data.get("train") or {}).get("out_dir", TrainConfig.out_dir))


def _run_config(args: argparse.Namespace) -> tuple[dict, Path]:
    """The recipe with the command line's overrides; with --resume, the run's own saved config
    (as it started) with the new overrides on top, so a resume continues what was started."""
    from audiodiff.config import apply_overrides, load_yaml

    data = apply_overrides(load_yaml(args.config), args.overrides)
    out_dir = _out_dir(data)
    saved = out_dir / RUN_FILE
    if args.resume and saved.is_file():
        data = apply_overrides(load_yaml(saved), args.overrides)
        extra = f", with {' '.join(args.overrides)} on top" if args.overrides else ""
        print(f"--resume: {out_dir} continues as it started ({saved}){extra}", file=sys.stderr)
    return data, out_dir


def _save_run_config(data: dict, out_dir: Path, resume: bool) -> None:
    import yaml

    from audiodiff.checkpoint import list_checkpoints, write_atomic

    if list_checkpoints(out_dir) and not resume:
        return  # the trainer refuses this run; keep the run's own record
    out_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False)
    write_atomic(out_dir / RUN_FILE, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _train_tasks() -> dict:
    from audiodiff.config import AutoencoderRunConfig, DiffusionRunConfig, DistillRunConfig, VocoderRunConfig
    from audiodiff.train.autoencoder import AutoencoderTask
    from audiodiff.train.diffusion import DiffusionTask
    from audiodiff.train.distill import DistillTask
    from audiodiff.train.vocoder import VocoderTask

    return {
        "autoencoder": (AutoencoderRunConfig, AutoencoderTask),
        "diffusion": (DiffusionRunConfig, DiffusionTask),
        "distill": (DistillRunConfig, DistillTask),
        "vocoder": (VocoderRunConfig, VocoderTask),
    }


# --------------------------------------------------------------------------------------------
# generate


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="a checkpoint directory or a run directory (its newest checkpoint)")
    source.add_argument("--model", help="a bundled model name, e.g. digits")
    parser.add_argument("--vocoder", help="a vocoder checkpoint directory or griffin_lim (default: the model's)")
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="PATH[:SCALE]",
        help="a LoRA/DoRA adapter run on this model, at SCALE (default 1; repeatable: adapters add up)",
    )
    _add_device_arg(parser)
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="the U-Net's while sampling (default auto: bf16 for mel models where the hardware has it natively)",
    )


def _add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="where the models run: cpu, cuda, cuda:N or mps (default: cpu)")


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
        "--negative", action="append", default=[], metavar="NAME=VALUE", help="a condition to guide away from"
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
        "--sampler", choices=sorted(SAMPLERS), help="default: the model's (ddpm for inpaint and continue)"
    )
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the model's)")
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
    named = {"label": args.label, "text": args.text, "negative_label": args.negative_label}
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


def _write_settings(paths: list, out, model: str, duration: float | None) -> None:
    """A JSON sidecar beside each clip: the model and every setting of the call that made it,
    and which clip of the batch it is, so `audiodiff generate --settings CLIP.json` makes the
    same clip again, bit for bit (batched arithmetic rounds differently at other batch sizes, so
    the whole batch is made again)."""
    import json

    settings = out.settings.to_dict()
    for index, path in enumerate(paths):
        record = {"model": model, "duration": duration, "n": len(paths), "index": index, "settings": settings}
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


def _write_clips(audio, sample_rate: int, paths: list[Path], plot: bool) -> None:
    from audiodiff.plots import spectrogram_image

    for clip, path in zip(audio, paths):
        _save(path, clip, sample_rate)
        if plot:
            spectrogram_image(clip, sample_rate, path.with_suffix(".png"), path.name)
        print(path)


def _save(path: Path, clip, sample_rate: int) -> None:
    """`save_audio`, with a path that cannot be written as a user error naming it."""
    from audiodiff.audio import AudioError, save_audio

    try:
        save_audio(path, clip, sample_rate)
    except (OSError, RuntimeError) as error:
        raise AudioError(f"{path}: cannot write it ({error}); choose another --out") from None


def _generate_args(parser: argparse.ArgumentParser) -> None:
    _add_model_args(parser)
    _add_sampling_args(parser)
    parser.add_argument("--n", type=int, default=1, help="number of clips")
    parser.add_argument("--duration", type=float, help="seconds (default: the training length)")
    parser.add_argument("--out", required=True, help="a .wav file, or a directory for several clips")
    parser.add_argument("--plot", action="store_true", help="also write a spectrogram PNG beside each wav")
    parser.add_argument(
        "--melody-from", metavar="FILE",
        help="follow the pitch contour and loudness of this recording (a model with control curves, e.g. notes)",
    )  # fmt: skip
    parser.add_argument(
        "--transpose", type=float, default=0.0, help="with --melody-from: move the melody by this many semitones"
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
    out = pipe.generate(n=args.n, duration=duration, request=request)
    paths = _output_paths(args.out, args.n)
    _write_clips(out.audio, out.sample_rate, paths, args.plot)
    _write_settings(paths, out, str(args.checkpoint or args.model), duration)
    return 0


def _generate_again(args: argparse.Namespace) -> int:
    """`generate --settings CLIP.json`: the model and settings of the sidecar, one clip."""
    from audiodiff.request import GenerationRequest

    record = _read_settings(args.settings)
    if not (args.checkpoint or args.model):
        args.model = record["model"]
    pipe = _load_pipeline(args)
    request = dataclasses.replace(GenerationRequest.from_settings(record["settings"]), progress=True)
    count, index = int(record.get("n", 1)), int(record.get("index", 0))
    out = pipe.generate(n=count, duration=record.get("duration"), request=request)
    out.audio = out.audio[index : index + 1]
    paths = _output_paths(args.out, 1)
    _write_clips(out.audio, out.sample_rate, paths, args.plot)
    return 0


# --------------------------------------------------------------------------------------------
# editing: vary, inpaint, continue


def _edit_args(parser: argparse.ArgumentParser) -> None:
    _add_model_args(parser)
    parser.add_argument("input", help="the audio file to edit (resampled to the model's rate)")
    _add_sampling_args(parser)
    parser.add_argument("--out", required=True, help="output .wav")
    parser.add_argument("--plot", action="store_true", help="also write a spectrogram PNG beside the wav")


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
    parser.add_argument("--start", type=float, required=True, help="start of the span to regenerate, seconds")
    parser.add_argument("--end", type=float, required=True, help="end of the span to regenerate, seconds")
    parser.add_argument(
        "--resample-steps", type=int, default=2, help="RePaint resampling per step (more: better seams)"
    )


@command("inpaint", "regenerate a time span of a file, keeping the rest")(_inpaint_args)
def run_inpaint(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    out = pipe.inpaint(
        args.input, start=args.start, end=args.end, resample_steps=args.resample_steps, request=_request(args, pipe)
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


# --------------------------------------------------------------------------------------------
# vocode and export


def _vocode_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vocoder", required=True, help="a vocoder checkpoint directory, a bundled name, or griffin_lim"
    )
    parser.add_argument(
        "--mel-from", help="with griffin_lim: a checkpoint whose MelSpec to use (default: 16 kHz, 80 mels)"
    )
    parser.add_argument("input", help="audio file (resampled to the vocoder's rate)")
    parser.add_argument("output", help="output .wav")
    parser.add_argument("--plot", action="store_true", help="also write a spectrogram PNG (input vs output)")
    _add_device_arg(parser)


@command("vocode", "mel round trip: analyse a file to a mel and resynthesise it with a vocoder")(_vocode_args)
def run_vocode(args: argparse.Namespace) -> int:
    import time

    from audiodiff.audio import MelSpec, load_audio
    from audiodiff.vocoder import Vocoder

    mel_spec = None
    if args.vocoder == "griffin_lim":
        mel_spec = MelSpec()
        if args.mel_from:
            from audiodiff.pipeline import Pipeline

            mel_spec = Pipeline.from_pretrained(args.mel_from).mel_spec or mel_spec
    _check_device(args.device)
    vocoder = Vocoder.from_pretrained(args.vocoder, mel_spec).to(args.device)
    rate = vocoder.mel_spec.sample_rate
    audio, _ = load_audio(args.input, sample_rate=rate, channels=1)
    started = time.perf_counter()
    out = vocoder.round_trip(audio.to(args.device))[0].cpu()
    seconds = time.perf_counter() - started
    _save(Path(args.output), out, rate)
    if args.plot:
        from audiodiff.plots import plot_spectrograms

        plot_spectrograms(
            [audio, out], rate, Path(args.output).with_suffix(".png"), ["input", f"{vocoder.kind} vocoder"], columns=2
        )
    duration = out.shape[-1] / rate
    print(
        f"{args.output}: {duration:.2f} s vocoded in {seconds:.3f} s ({duration / max(seconds, 1e-9):.0f}x real time)"
    )
    return 0


def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vocoder", required=True, help="a GAN vocoder checkpoint directory or bundled name")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    parser.add_argument("--out", required=True, help="output file (.onnx or .pt)")


@command("export", "export a GAN vocoder to ONNX or TorchScript for deployment")(_export_args)
def run_export(args: argparse.Namespace) -> int:
    from audiodiff.bundled import bundled_vocoders
    from audiodiff.vocoder import Vocoder, VocoderError
    from audiodiff.vocoder.export import export_vocoder

    if args.vocoder == "griffin_lim":
        raise VocoderError(
            f"--vocoder griffin_lim has no weights to export; pass a GAN vocoder directory or one of {bundled_vocoders()}"
        )
    path, report = export_vocoder(Vocoder.from_pretrained(args.vocoder), args.out, args.format)
    print(f"{path}: {report}")
    return 0


# --------------------------------------------------------------------------------------------
# data


def _data_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="builder", required=True)
    synth = sub.add_parser("synth", help="a small synthetic set (tones, noise, chirps) for trying things out")
    synth.add_argument("--out", required=True)
    synth.add_argument("--per-class", type=int, default=32)
    synth.add_argument("--seed", type=int, default=0)
    for name, (add, _, help_text) in DATA_BUILDERS.items():
        add(sub.add_parser(name, help=help_text))


def _espeak_args(parser: argparse.ArgumentParser, num_clips: int, seconds: float) -> None:
    parser.add_argument("--out", required=True, help="output folder (wavs/, manifest.jsonl, info.json)")
    parser.add_argument("--num-clips", type=int, default=num_clips)
    parser.add_argument("--seconds", type=float, default=seconds, help="clip length")
    parser.add_argument("--sample-rate", type=int, default=16_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, help="parallel renderers (default: one per CPU)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing build in --out")


def _digits_args(parser: argparse.ArgumentParser) -> None:
    _espeak_args(parser, num_clips=10_000, seconds=1.0)


def _run_espeak(args: argparse.Namespace) -> int:
    from audiodiff.data import builders

    build = {"digits": builders.build_digits, "speech": builders.build_speech}[args.builder]
    print(
        build(
            args.out, args.num_clips, args.seed, args.sample_rate, args.seconds, args.workers, overwrite=args.overwrite
        )
    )
    return 0


def _speech_args(parser: argparse.ArgumentParser) -> None:
    _espeak_args(parser, num_clips=3_000, seconds=2.0)


def _int_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    values = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        values.extend(range(int(low), int(high) + 1) if high else [int(low)])
    return values


def _notes_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (wavs/, manifest.jsonl, info.json)")
    parser.add_argument(
        "--programs", help="General MIDI programs, e.g. 0,24,40-42 (default: a set covering the families)"
    )
    parser.add_argument("--pitches", help="MIDI pitches, e.g. 48-72 (default: each instrument's range within 36-84)")
    parser.add_argument("--velocities", help="MIDI velocities, e.g. 50,75,100,127")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument(
        "--gestures", type=int, default=120,
        help="clips per program whose pitch or loudness moves (bends, vibrato, swells, phrases); 0 for held notes only",
    )  # fmt: skip
    parser.add_argument("--soundfont", help="a .sf2 file (default: Debian's FluidR3_GM)")
    parser.add_argument("--sample-rate", type=int, default=16_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--overwrite", action="store_true")


def _run_notes(args: argparse.Namespace) -> int:
    from audiodiff.data.builders import build_notes

    report = build_notes(
        args.out,
        programs=_int_list(args.programs),
        pitches=_int_list(args.pitches),
        velocities=_int_list(args.velocities),
        seconds=args.seconds,
        seed=args.seed,
        soundfont=args.soundfont,
        gestures=args.gestures,
        sample_rate=args.sample_rate,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(report)
    return 0


def _source_args(parser: argparse.ArgumentParser) -> None:
    """How to read a data source: the options of `DataConfig` that `scan` and `shard` take."""
    from audiodiff.data.layouts import LAYOUTS

    parser.add_argument(
        "--layout", default="auto", help=f"{', '.join(['auto', *LAYOUTS])} (auto: the first whose files are there)"
    )
    parser.add_argument(
        "--label-from-folder", action="store_true", help="plain folders: the parent folder names the label"
    )
    parser.add_argument("--split", help="keep only this split (default: all, each row keeps its split)")
    parser.add_argument("--labels", help="keep only these labels, comma-separated (e.g. the ten digit words)")
    parser.add_argument(
        "--number-fields", help="manifest fields to read as numbers, comma-separated (e.g. pitch,velocity)"
    )
    parser.add_argument("--min-seconds", type=float, default=0.05, help="shorter files are skipped")
    parser.add_argument("--max-file-seconds", type=float, default=600.0, help="longer files are skipped")
    parser.add_argument("--no-scan-cache", action="store_true", help="decode every file even if it was checked before")


def _source_config(args: argparse.Namespace, path: str):
    from audiodiff.config import DataConfig

    def names(text: str | None) -> list[str] | None:
        return [name.strip() for name in text.split(",") if name.strip()] if text else None

    return DataConfig(
        path=path,
        layout=args.layout,
        split=args.split,
        labels_subset=names(args.labels),
        label_from_folder=args.label_from_folder,
        number_fields=names(args.number_fields) or [],
        min_seconds=args.min_seconds,
        max_file_seconds=args.max_file_seconds,
        scan_cache=not args.no_scan_cache,
    )


def _recipe_data(config_path: str, source: str):
    """A recipe's data settings for the files at `source`."""
    from audiodiff.config import ConfigError, DataConfig, from_dict, load_yaml

    data = dict(load_yaml(config_path).get("data") or {})
    data["path"] = source
    try:
        return from_dict(DataConfig, data)
    except ConfigError as error:
        raise ConfigError(f"{config_path}: {error}") from None


def _scan_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="DIR", help="a folder of audio, a known layout or a manifest")
    parser.add_argument(
        "--out", required=True, help="the manifest to write (.jsonl); paths are relative to its folder where possible"
    )
    parser.add_argument(
        "--config",
        help="a recipe's config.yaml: check the files as its training will (its data: settings, DIR as data.path)",
    )
    _source_args(parser)


def _run_scan(args: argparse.Namespace) -> int:
    from audiodiff.data.dataset import scan_items
    from audiodiff.data.manifest import write_manifest

    cfg = _source_config(args, args.source)
    if args.config:  # the recipe's settings, with the layout options given here on top
        recipe = _recipe_data(args.config, args.source)
        given = {
            "layout": cfg.layout,
            "split": cfg.split,
            "labels_subset": cfg.labels_subset,
            "number_fields": cfg.number_fields,
        }
        given = {k: v for k, v in given.items() if v not in (None, "auto", [])}
        cfg = dataclasses.replace(recipe, **given, label_from_folder=args.label_from_folder or recipe.label_from_folder)
    items, report = scan_items(cfg, progress=None)
    path = write_manifest(items, args.out)
    print(report)
    print(f"manifest: {path} ({len(items)} rows)")
    return 0


def _shard_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="MANIFEST", help="a manifest (or any folder `data scan` reads)")
    parser.add_argument("--out", required=True, help="folder for shard-NNNNN.tar files and index.json")
    parser.add_argument("--shard-size", type=int, default=1000, help="items per shard")
    parser.add_argument("--seed", type=int, default=0, help="the shuffle before sharding, so shards mix the classes")
    parser.add_argument("--overwrite", action="store_true", help="replace shards already in --out")
    _source_args(parser)


def _run_shard(args: argparse.Namespace) -> int:
    from audiodiff.data.dataset import scan_items
    from audiodiff.data.shards import write_shards

    source = Path(args.source).expanduser()
    items, report = scan_items(_source_config(args, args.source), progress=None)
    print(report)
    index = write_shards(
        items, args.out, args.shard_size, source if source.is_dir() else source.parent, args.seed, args.overwrite
    )
    count = -(-len(items) // args.shard_size)
    print(f"shards: {count} in {index.parent} ({len(items)} items); train with data.path={index.parent}")
    return 0


def _builder(module: str) -> tuple[Callable, Callable]:
    """`(add_arguments, run)` of `audiodiff.data.builders.<module>`, imported when first used."""
    import importlib

    def load():
        return importlib.import_module(f"audiodiff.data.builders.{module}")

    return (lambda parser: load().add_arguments(parser)), (lambda args: load().run(args))


DATA_BUILDERS: dict[str, tuple[Callable, Callable, str]] = {
    "digits": (_digits_args, _run_espeak, "spoken digits zero..nine rendered by espeak-ng (offline)"),
    "speech": (
        _speech_args,
        _run_espeak,
        "phrases in many espeak-ng voices and languages, for training vocoders (offline)",
    ),
    "notes": (_notes_args, _run_notes, "instrument notes rendered by fluidsynth from a General MIDI soundfont"),
    "scan": (_scan_args, _run_scan, "check every audio file of a folder or layout and write a manifest (.jsonl)"),
    "shard": (_shard_args, _run_shard, "write a manifest's audio as tar shards that training streams"),
    "drums": (*_builder("drums"), "real drum one-shots from Debian's hydrogen-drumkits, sonic-pi-samples, avldrums"),
    "voices": (
        *_builder("voices"),
        "real speech: Asterisk's studio prompts, festvox-ru's recordings, festival voices (kind marks them)",
    ),
    "music": (*_builder("music"), "recorded game music (Wesnoth, Warzone 2100, Nexuiz) cut into stereo 44.1 kHz clips"),
}


@command("data", "build or index datasets")(_data_args)
def run_data(args: argparse.Namespace) -> int:
    if args.builder == "synth":
        from audiodiff.data.synth import build_synthetic

        print(build_synthetic(args.out, per_class=args.per_class, seed=args.seed))
        return 0
    return DATA_BUILDERS[args.builder][1](args)


# --------------------------------------------------------------------------------------------
# eval


def _eval_args(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The scores need a classifier trained on labelled real clips of the same sounds (--classifier; "
        "`audiodiff eval train-classifier --help`): accuracy, IS/mIS/AM and the default Fréchet embedding "
        "come from it. Without one, only the 'crepe' Fréchet embedding (pip install torchcrepe) and, for "
        "clips that pair by name, the signal distances can be computed."
    )
    sub = parser.add_subparsers(dest="eval_command", metavar="train-classifier")
    for name, (add, _, help_text) in EVAL_COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--generated", help="folder of generated clips (labels from subfolders: DIR/LABEL/x.wav)")
    source.add_argument("--checkpoint", help="sample from this checkpoint (or run directory) into OUT/generated/LABEL/")
    parser.add_argument("--per-label", type=int, default=32, help="with --checkpoint: clips per label")
    parser.add_argument("--labels", help="with --checkpoint: comma-separated labels (default: all the model's)")
    parser.add_argument("--steps", type=int, help="with --checkpoint: sampling steps (default: the model's)")
    from audiodiff.diffusion.samplers import SAMPLERS

    parser.add_argument("--sampler", choices=sorted(SAMPLERS), help="with --checkpoint: sampler (default: the model's)")
    parser.add_argument("--guidance", type=float, help="with --checkpoint: guidance scale (default: the model's)")
    parser.add_argument("--vocoder", help="with --checkpoint: vocoder directory or griffin_lim (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=16, help="with --checkpoint: clips per generate call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="with --checkpoint: replace clips in OUT/generated")
    parser.add_argument(
        "--reference", help="real clips: a folder (DIR/LABEL/x.wav) or a dataset manifest / folder with one"
    )
    parser.add_argument("--split", help="split of --reference (default: test where there is one; '' for all)")
    parser.add_argument(
        "--training-split",
        help="memorisation: the model's training clips, this split of --reference (default: train where "
        "there is one; '' to skip); each generated clip's nearest one against the held-out clips' own, with a listening page",
    )
    parser.add_argument(
        "--likelihood",
        type=int,
        default=0,
        metavar="N",
        help="with --checkpoint: negative log-likelihood (bits/dim, probability-flow ODE) of N reference clips, "
        "beside the same clips with their frames shuffled and Gaussian noise",
    )
    parser.add_argument("--likelihood-steps", type=int, default=12, help="Runge-Kutta steps of the likelihood ODE")
    _add_device_arg(parser)
    parser.add_argument(
        "--training-reference", help="memorisation: the model's training clips from another folder or manifest"
    )
    parser.add_argument(
        "--training-clips", type=int, default=2000, help="memorisation: at most this many training clips (evenly drawn)"
    )
    parser.add_argument(
        "--classifier",
        help="classifier directory (from `audiodiff eval train-classifier`); needed for accuracy, IS and the default Fréchet embedding",
    )
    parser.add_argument(
        "--embedding",
        action="append",
        help="Fréchet embedding, repeatable: classifier, crepe (default: classifier if given)",
    )
    floor = parser.add_mutually_exclusive_group()
    floor.add_argument("--floor-reference", help="real clips standing in for the generated ones (the floor)")
    floor.add_argument(
        "--floor-split", help="split of --reference to draw the floor from (default: train where there is one)"
    )
    floor.add_argument("--no-floor", action="store_true", help="skip the real-vs-real floor")
    parser.add_argument("--out", help="output folder: metrics.json, report.md, PNGs")


@command("eval", "score generated audio against real audio, beside the real-vs-real floor")(_eval_args)
def run_eval(args: argparse.Namespace) -> int:
    if args.eval_command:
        return EVAL_COMMANDS[args.eval_command][1](args)
    return _run_evaluation(args)


def _run_evaluation(args: argparse.Namespace) -> int:
    from audiodiff.metrics.evaluation import (
        EvaluationError,
        available_splits,
        check_labels,
        evaluate,
        floor_subset,
        load_classifier,
        load_clips,
        sample_checkpoint,
    )

    missing = [
        flag
        for flag, value in (
            ("--generated or --checkpoint", args.generated or args.checkpoint),
            ("--reference", args.reference),
            ("--out", args.out),
        )
        if not value
    ]
    if missing:
        raise EvaluationError(f"audiodiff eval needs {', '.join(missing)} (see audiodiff eval --help)")
    _check_device(args.device)
    classifier = load_classifier(args.classifier)
    splits = available_splits(args.reference)
    split = args.split if args.split is not None else ("test" if "test" in splits else None)
    reference = load_clips(args.reference, split or None, side="reference")
    check_labels(reference.labels, classifier, f"reference {reference.description}")
    floor_split = (
        args.floor_split
        if args.floor_split is not None
        else ("train" if "train" in splits and split != "train" else None)
    )
    info: dict = {"arguments": {key: value for key, value in vars(args).items() if key != "run"}}
    if args.checkpoint:
        labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
        generated, info["sampling"] = sample_checkpoint(
            args.checkpoint,
            Path(args.out) / "generated",
            args.per_label,
            labels,
            args.steps,
            args.sampler,
            args.guidance,
            args.seed,
            args.batch_size,
            args.vocoder,
            args.overwrite,
            classifier,
            device=args.device,
        )
    else:
        generated = load_clips(args.generated, side="generated")
    check_labels(generated.labels, classifier, f"generated {generated.description}")
    floor = None
    if args.floor_reference:
        floor = floor_subset(load_clips(args.floor_reference, side="floor"), generated, args.seed)
    elif floor_split and not args.no_floor:
        floor = floor_subset(load_clips(args.reference, floor_split, side="floor"), generated, args.seed)
    training = None
    training_split = (
        args.training_split
        if args.training_split is not None
        else ("train" if "train" in splits and split != "train" else "")
    )
    if classifier is not None and (args.training_reference or training_split):
        training = load_clips(
            args.training_reference or args.reference,
            None if args.training_reference else training_split,
            side="training",
        )
        training = training.every(max(1, -(-len(training) // args.training_clips)))
    if args.likelihood:
        if not args.checkpoint:
            raise EvaluationError(
                "--likelihood needs the model: pass --checkpoint (a bundled name, checkpoint or run directory)"
            )
        from audiodiff.metrics.evaluation import likelihood_report

        info["likelihood"] = likelihood_report(
            args.checkpoint, reference, args.likelihood, args.likelihood_steps, args.seed, args.device
        )
    result = evaluate(
        generated, reference, args.out, classifier, floor, args.embedding, info, progress=True, training=training
    )
    print(f"{'score':<54} {'model':>10} {'floor':>10}")
    for row in result["scores"]:
        model, floor_value = (f"{row[key]:.4g}" if row[key] is not None else "-" for key in ("model", "floor"))
        print(f"{row['title'] + ' (' + row['better'] + ' is better)':<54} {model:>10} {floor_value:>10}")
    for name, row in (result.get("likelihood") or {}).get("sets", {}).items():
        print(f"NLL {name:<36} {row['mean_bits_per_dim']:>10.3f} ± {row['standard_error']:.3f} bits/dim")
    if result.get("memorisation"):
        found = result["memorisation"]
        print(
            f"memorisation: {found['copy_share']:.1%} of generated clips nearer a training clip than {found['percentile']:g}% "
            f"of held-out clips; closest pairs in {Path(args.out) / 'memorisation.html'}"
        )
    print(f"wrote {Path(args.out) / 'metrics.json'} and {Path(args.out) / 'report.md'}")
    return 0


def _train_classifier_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, help="labelled clips: a dataset manifest / folder with one, or DIR/LABEL/x.wav"
    )
    parser.add_argument("--split", help="training split (default: train where there is one; '' for all)")
    parser.add_argument("--valid-split", help="accuracy reported on this split (default: valid where there is one)")
    parser.add_argument("--test-split", help="and on this one (default: test where there is one)")
    parser.add_argument("--out", required=True, help="classifier directory (config.json + model.safetensors)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clip-seconds", type=float, default=1.0, help="clips are cropped or zero-padded to this")
    parser.add_argument("--seed", type=int, default=0)


def _run_train_classifier(args: argparse.Namespace) -> int:
    from audiodiff.metrics.evaluation import train_evaluation_classifier

    summary = train_evaluation_classifier(
        args.data,
        args.out,
        args.split,
        args.valid_split,
        args.test_split,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        clip_seconds=args.clip_seconds,
        seed=args.seed,
    )
    training = summary["training"]
    print(
        f"trained on {training['num_items']} clips in {training['seconds']:.0f} s "
        f"(final train accuracy {training['final_train_accuracy']:.3f})"
    )
    for split, scores in training["evaluation"].items():
        worst = min((v, k) for k, v in scores["per_class_accuracy"].items() if v is not None)
        print(
            f"{split} accuracy {scores['accuracy']:.4f} on {scores['num_items']} clips (lowest: {worst[1]} {worst[0]:.3f})"
        )
    print(f"saved {summary['path']}")
    return 0


EVAL_COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train-classifier": (
        _train_classifier_args,
        _run_train_classifier,
        "train the evaluation classifier on labelled real clips",
    ),
}


# --------------------------------------------------------------------------------------------
# demo


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="DIR",
        help="a checkpoint or run directory to serve beside the bundled models (repeatable)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 serves the local network)")
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


@command("demo", "the Gradio page: generate, edit, compare vocoders, read about a model")(_demo_args)
def run_demo(args: argparse.Namespace) -> int:
    try:
        from audiodiff.demo import launch
    except ImportError as error:
        print(f"error: the demo needs gradio ({error}); pip install 'audiodiff[demo]'", file=sys.stderr)
        return 2
    _check_device(args.device)
    try:
        launch(args.checkpoint, host=args.host, port=args.port, share=args.share, device=args.device)
    except OSError as error:
        if "port" not in str(error):
            raise
        where = f"--port {args.port} is in use" if args.port else "no free port from 7860"
        raise UserError(f"{where} on {args.host}; pass another --port") from None
    return 0


# --------------------------------------------------------------------------------------------


SAMPLING_COMMANDS = ("generate", "vary", "inpaint", "continue")


def build_parser(conditions_help: str | None = None) -> argparse.ArgumentParser:
    """The parser; `conditions_help` (the named model's conditions) closes the sampling
    commands' help."""
    parser = argparse.ArgumentParser(
        prog="audiodiff", description="Audio generation with diffusion models: train, generate, edit, vocode, evaluate."
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
    name = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--model", "--checkpoint")), None)
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
