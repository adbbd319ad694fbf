"""`audiodiff train`: a diffusion model, a vocoder or a mel autoencoder from a YAML config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audiodiff.cli.registry import command


def _train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a recipe's config.yaml")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in train.out_dir",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (logs still go to log.jsonl)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="section.key=value, e.g. train.steps=200 data.path=data/digits",
    )


@command(
    "train",
    "train a diffusion model, a vocoder, an upsampler or a mel autoencoder from a YAML config (torchrun-compatible)",
)(_train_args)
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
        print(
            f"stopped at step {trainer.step} of {config.train.steps}; continue with:\n    {again}",
            file=sys.stderr,
        )
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
        print(
            f"--resume: {out_dir} continues as it started ({saved}){extra}",
            file=sys.stderr,
        )
    return data, out_dir


def _save_run_config(data: dict, out_dir: Path, resume: bool) -> None:
    import yaml

    from audiodiff.checkpoint import list_checkpoints, write_atomic

    if list_checkpoints(out_dir) and not resume:
        return  # the trainer refuses this run; keep the run's own record
    out_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False)
    write_atomic(
        out_dir / RUN_FILE,
        lambda temporary: temporary.write_text(text, encoding="utf-8"),
    )


def _train_tasks() -> dict:
    from audiodiff.config import (
        AutoencoderRunConfig,
        DiffusionRunConfig,
        DistillRunConfig,
        UpsamplerRunConfig,
        VocoderRunConfig,
    )
    from audiodiff.train.autoencoder import AutoencoderTask
    from audiodiff.train.diffusion import DiffusionTask
    from audiodiff.train.distill import DistillTask
    from audiodiff.train.upsampler import UpsamplerTask
    from audiodiff.train.vocoder import VocoderTask

    return {
        "autoencoder": (AutoencoderRunConfig, AutoencoderTask),
        "diffusion": (DiffusionRunConfig, DiffusionTask),
        "distill": (DistillRunConfig, DistillTask),
        "upsampler": (UpsamplerRunConfig, UpsamplerTask),
        "vocoder": (VocoderRunConfig, VocoderTask),
    }
