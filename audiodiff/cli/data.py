"""`audiodiff data`: the dataset builders, `scan` and `shard`."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

from audiodiff.cli.registry import command


def _data_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="builder", required=True)
    synth = sub.add_parser(
        "synth",
        help="a small synthetic set (tones, noise, chirps) for trying things out",
    )
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
            args.out,
            args.num_clips,
            args.seed,
            args.sample_rate,
            args.seconds,
            args.workers,
            overwrite=args.overwrite,
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
        "--programs",
        help="General MIDI programs, e.g. 0,24,40-42 (default: a set covering the families)",
    )
    parser.add_argument(
        "--pitches",
        help="MIDI pitches, e.g. 48-72 (default: each instrument's range within 36-84)",
    )
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
        "--layout",
        default="auto",
        help=f"{', '.join(['auto', *LAYOUTS])} (auto: the first whose files are there)",
    )
    parser.add_argument(
        "--label-from-folder",
        action="store_true",
        help="plain folders: the parent folder names the label",
    )
    parser.add_argument("--split", help="keep only this split (default: all, each row keeps its split)")
    parser.add_argument(
        "--labels",
        help="keep only these labels, comma-separated (e.g. the ten digit words)",
    )
    parser.add_argument(
        "--number-fields",
        help="manifest fields to read as numbers, comma-separated (e.g. pitch,velocity)",
    )
    parser.add_argument("--min-seconds", type=float, default=0.05, help="shorter files are skipped")
    parser.add_argument("--max-file-seconds", type=float, default=600.0, help="longer files are skipped")
    parser.add_argument(
        "--no-scan-cache",
        action="store_true",
        help="decode every file even if it was checked before",
    )


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
        "--out",
        required=True,
        help="the manifest to write (.jsonl); paths are relative to its folder where possible",
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
        cfg = dataclasses.replace(
            recipe,
            **given,
            label_from_folder=args.label_from_folder or recipe.label_from_folder,
        )
    items, report = scan_items(cfg, progress=None)
    path = write_manifest(items, args.out)
    print(report)
    print(f"manifest: {path} ({len(items)} rows)")
    return 0


def _shard_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="MANIFEST",
        help="a manifest (or any folder `data scan` reads)",
    )
    parser.add_argument("--out", required=True, help="folder for shard-NNNNN.tar files and index.json")
    parser.add_argument("--shard-size", type=int, default=1000, help="items per shard")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the shuffle before sharding, so shards mix the classes",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace shards already in --out")
    _source_args(parser)


def _run_shard(args: argparse.Namespace) -> int:
    from audiodiff.data.dataset import scan_items
    from audiodiff.data.shards import write_shards

    source = Path(args.source).expanduser()
    items, report = scan_items(_source_config(args, args.source), progress=None)
    print(report)
    index = write_shards(
        items,
        args.out,
        args.shard_size,
        source if source.is_dir() else source.parent,
        args.seed,
        args.overwrite,
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
    "digits": (
        _digits_args,
        _run_espeak,
        "spoken digits zero..nine rendered by espeak-ng (offline)",
    ),
    "speech": (
        _speech_args,
        _run_espeak,
        "phrases in many espeak-ng voices and languages, for training vocoders (offline)",
    ),
    "notes": (
        _notes_args,
        _run_notes,
        "instrument notes rendered by fluidsynth from a General MIDI soundfont",
    ),
    "scan": (
        _scan_args,
        _run_scan,
        "check every audio file of a folder or layout and write a manifest (.jsonl)",
    ),
    "shard": (
        _shard_args,
        _run_shard,
        "write a manifest's audio as tar shards that training streams",
    ),
    "drums": (
        *_builder("drums"),
        "real drum one-shots from Debian's hydrogen-drumkits, sonic-pi-samples, avldrums",
    ),
    "voices": (
        *_builder("voices"),
        "real speech: Asterisk's studio prompts, festvox-ru's recordings, festival voices (kind marks them)",
    ),
    "music": (
        *_builder("music"),
        "recorded game music (Wesnoth, Warzone 2100, Nexuiz) cut into stereo 44.1 kHz clips",
    ),
}


@command("data", "build or index datasets")(_data_args)
def run_data(args: argparse.Namespace) -> int:
    if args.builder == "synth":
        from audiodiff.data.synth import build_synthetic

        print(build_synthetic(args.out, per_class=args.per_class, seed=args.seed))
        return 0
    return DATA_BUILDERS[args.builder][1](args)
