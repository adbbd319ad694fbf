"""The GPU check: every recipe trained a few steps on the device (bf16 where it has it), one run
resumed, a two-process torchrun step over NCCL when there are two GPUs, every bundled model and
student generating and the bundled vocoder vocoding on the device, each timed against the same
work on this machine's CPU. Prints a table and writes JSON; exits non-zero if any check failed.

    python -m benchmarks.gpu                                  # on a CUDA machine
    python -m benchmarks.gpu --device cpu --recipes quickstart --models digits-fast   # the script itself, on CPU

It needs no data: each recipe trains on synthetic clips written here, labelled with the labels,
numbers and caption words of the model it starts from (a distillation teacher or `init_from`),
so every recipe's own config (representation, model, conditioning) is what runs. Apart from
torch, the device machine needs soundfile and librosa (carry them as wheels where pip cannot
reach an index).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from audiodiff.audio import save_audio
from audiodiff.bundled import bundled_names, bundled_path
from audiodiff.checkpoint import CONFIG, read_json, resolve_checkpoint
from audiodiff.config import load_yaml
from audiodiff.data.synth import SYNTH_CLASSES, synth_clip
from benchmarks.machine import command, machine_info, now, write_result

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
VOCODER = "vocoder-16k"


# --------------------------------------------------------------------------------------------
# data that any recipe can train on


def source_model(recipe: dict) -> str | None:
    """The bundled model a recipe starts from (distillation teacher or init_from), if any."""
    for section, key in (("distill", "teacher"), ("train", "init_from")):
        name = (recipe.get(section) or {}).get(key)
        if name and bundled_path(str(name)) is not None:
            return str(name)
    return None


def write_data(folder: Path, like: str | None, clips: int = 12, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    """Synthetic clips with a manifest carrying label, text, pitch and velocity; with `like` (a
    bundled model), its labels, number ranges and caption words, so the model accepts them."""
    labels, numbers, words = list(SYNTH_CLASSES), {"pitch": [40.0, 80.0], "velocity": [50.0, 127.0]}, ["a", "sound"]
    if like is not None:
        conditioning = read_json(bundled_path(like) / CONFIG).get("conditioning") or {}
        labels = conditioning.get("labels") or labels
        numbers.update(
            {k: v for k, v in (conditioning.get("numbers") or {}).items() if isinstance(v, list) and len(v) == 2}
        )
        words = [w for w in ((conditioning.get("text") or {}).get("vocab") or words) if w.isalpha()][:40] or words
    generator = torch.Generator().manual_seed(0)
    rows = []
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    for index in range(clips):
        kind = SYNTH_CLASSES[index % len(SYNTH_CLASSES)]
        audio, _ = synth_clip(kind, sample_rate, seconds, generator)
        path = f"wavs/clip{index:03d}.wav"
        save_audio(folder / path, audio, sample_rate)
        row = {
            "path": path,
            "label": labels[index % len(labels)],
            "split": "test" if index % 6 == 5 else "train",
            "text": " ".join(words[(index + k) % len(words)] for k in range(4)),
        }
        for name, (low, high) in numbers.items():
            row[name] = round(low + (high - low) * ((index * 7) % 11) / 10, 2)
        rows.append(row)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


# --------------------------------------------------------------------------------------------
# the checks


class Checks:
    """Runs named checks, each recorded with its status, seconds and details; a failure is
    recorded (with the end of its traceback) and the next check runs."""

    def __init__(self):
        self.rows: list[dict] = []

    def run(self, kind: str, name: str, check) -> dict:
        started = time.perf_counter()
        row = {"kind": kind, "name": name}
        try:
            row.update(check() or {})
            row["status"] = "ok"
        except Exception as error:  # a check's failure is a result, not the end of the run
            row.update(
                status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc()[-1500:]
            )
        row["seconds"] = round(time.perf_counter() - started, 2)
        self.rows.append(row)
        print(f"  {row['status']:<6} {kind:<9} {name:<22} {row['seconds']:>7.1f} s", flush=True)
        return row


def train_args(recipe: str, data: Path, out: Path, device: str, steps: int, precision: str) -> list[str]:
    config = load_yaml(RECIPES / recipe / "config.yaml")
    overrides = [
        f"data.path={data}",
        f"data.cache_dir={out / 'cache'}",
        f"train.out_dir={out / 'run'}",
        f"train.steps={steps}",
        "train.batch_size=4",
        "train.warmup_steps=1",
        f"train.ckpt_every={steps}",
        "train.preview_every=0",
        "train.log_every=1",
        f"train.device={device}",
        f"train.precision={precision}",
        "train.max_minutes=0",
    ]
    if config.get("kind") == "vocoder":
        overrides += ["data.split=null", "loss.discriminator_start=1"]
    else:
        overrides += ["sampling.griffin_lim_iters=4"]
    return ["train", "--config", str(RECIPES / recipe / "config.yaml"), "--no-progress", *overrides]


def checkpoint_info(run: Path) -> dict:
    info = read_json(resolve_checkpoint(run) / CONFIG)
    training = info.get("training") or {}
    return {
        "step": training.get("step"),
        "device": training.get("device"),
        "precision": training.get("precision"),
        "world_size": training.get("world_size"),
    }


def check_recipe(recipe: str, work: Path, device: str, steps: int, precision: str) -> dict:
    from audiodiff.cli import main

    config = load_yaml(RECIPES / recipe / "config.yaml")
    data = write_data(work / "data", source_model(config))
    if main(train_args(recipe, data, work, device, steps, precision)) != 0:
        raise RuntimeError(f"audiodiff train --config recipes/{recipe}/config.yaml exited non-zero")
    info = checkpoint_info(work / "run")
    if info["step"] != steps:
        raise RuntimeError(f"the checkpoint is at step {info['step']}, expected {steps}")
    return info


def check_resume(work: Path, device: str, steps: int, precision: str) -> dict:
    from audiodiff.cli import main

    data = write_data(work / "data", None)
    args = train_args("quickstart", data, work, device, steps, precision)
    if main(args) != 0 or main([*args[:3], "--resume", *args[3:], f"train.steps={2 * steps}"]) != 0:
        raise RuntimeError("train, then train --resume, exited non-zero")
    info = checkpoint_info(work / "run")
    if info["step"] != 2 * steps:
        raise RuntimeError(f"after --resume the checkpoint is at step {info['step']}, expected {2 * steps}")
    return info


def check_torchrun(work: Path, steps: int, precision: str) -> dict:
    data = write_data(work / "data", None)
    args = train_args("quickstart", data, work, "cuda", steps, precision)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "audiodiff",
        *args,
    ]
    result = subprocess.run(
        torchrun, capture_output=True, text=True, timeout=600
    )  # NCCL: the trainer's backend on CUDA
    if result.returncode != 0:
        raise RuntimeError(f"torchrun exited {result.returncode}: {(result.stdout + result.stderr)[-800:]}")
    info = checkpoint_info(work / "run")
    if info["world_size"] != 2:
        raise RuntimeError(f"the checkpoint records world_size {info['world_size']}, expected 2")
    return info


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_generate(name: str, device: str, batch: int) -> float:
    """Seconds for one `generate(n=batch)` at the model's default steps, after a warm-up call."""
    from audiodiff.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(name, device=device)
    conditions = {"label": pipe.labels[0]} if pipe.labels else {}
    pipe.generate(n=batch, seed=0, progress=False, **conditions)
    _sync(device)
    started = time.perf_counter()
    out = pipe.generate(n=batch, seed=1, progress=False, **conditions)
    _sync(device)
    if not torch.isfinite(out.audio).all():
        raise RuntimeError("non-finite audio")
    return time.perf_counter() - started


def check_generate(name: str, device: str, cpu_batch: int) -> dict:
    result = {}
    for batch in (1, 16):
        seconds = time_generate(name, device, batch)
        result[f"device_s_batch{batch}"] = round(seconds, 3)
        if batch <= cpu_batch:
            cpu = time_generate(name, "cpu", batch)
            result[f"cpu_s_batch{batch}"] = round(cpu, 3)
            result[f"speedup_batch{batch}"] = round(cpu / max(seconds, 1e-9), 1)
    return result


def check_vocoder(device: str, seconds: float = 10.0) -> dict:
    from audiodiff.vocoder import Vocoder

    result = {}
    for where in dict.fromkeys([device, "cpu"]):
        vocoder = Vocoder.from_pretrained(VOCODER).to(where)
        audio = torch.randn(1, int(seconds * vocoder.mel_spec.sample_rate), device=where) * 0.1
        mel = vocoder.mel_spec(audio)
        with torch.inference_mode():
            vocoder(mel)
            _sync(where)
            started = time.perf_counter()
            out = vocoder(mel)
            _sync(where)
        elapsed = time.perf_counter() - started
        if not torch.isfinite(out).all():
            raise RuntimeError(f"non-finite audio on {where}")
        result[f"{'device' if where == device else 'cpu'}_real_time_x"] = round(seconds / elapsed, 1)
    return result


# --------------------------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    lines = ["| check | name | status | seconds | figures |", "|---|---|---|---:|---|"]
    for row in rows:
        figures = ", ".join(
            f"{k} {v}" for k, v in row.items() if k not in ("kind", "name", "status", "seconds", "error", "traceback")
        )
        lines.append(
            f"| {row['kind']} | {row['name']} | {row['status']} | {row['seconds']} | {figures or row.get('error', '')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (to try the script itself)")
    parser.add_argument("--recipes", help="comma-separated recipe names (default: every recipe)")
    parser.add_argument("--models", help="comma-separated bundled models (default: every bundled model and student)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per recipe")
    parser.add_argument(
        "--precision", default="auto", help="train.precision on the device (auto: bf16 where supported)"
    )
    parser.add_argument(
        "--cpu-batch", type=int, default=1, help="compare generation on the CPU up to this batch (16 is slow)"
    )
    parser.add_argument("--out", default="benchmarks/results/gpu.json")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "no CUDA device here: run this on a machine with a GPU (or --device cpu to try the script itself)",
            file=sys.stderr,
        )
        return 2
    recipes = (
        args.recipes.split(",")
        if args.recipes
        else sorted(p.name for p in RECIPES.iterdir() if (p / "config.yaml").is_file())
    )
    models = (
        args.models.split(",") if args.models else [name for name in bundled_names() if not name.startswith("vocoder")]
    )
    checks = Checks()
    work = Path(tempfile.mkdtemp(prefix="audiodiff-gpu-check-"))
    try:
        print(f"training {len(recipes)} recipe(s) for {args.steps} steps on {args.device}", flush=True)
        for recipe in recipes:
            checks.run(
                "train", recipe, lambda: check_recipe(recipe, work / recipe, args.device, args.steps, args.precision)
            )
        checks.run(
            "resume", "quickstart", lambda: check_resume(work / "resume", args.device, args.steps, args.precision)
        )
        if args.device.startswith("cuda") and torch.cuda.device_count() >= 2:
            checks.run(
                "torchrun",
                "quickstart x2 (nccl)",
                lambda: check_torchrun(work / "torchrun", args.steps, args.precision),
            )
        for name in models:
            checks.run("generate", name, lambda: check_generate(name, args.device, args.cpu_batch))
        checks.run("vocode", f"{VOCODER}, 10 s", lambda: check_vocoder(args.device))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    result = {
        "benchmark": "gpu",
        "date": now(),
        "command": command(),
        "device": args.device,
        "device_name": device_name,
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "bf16": bool(args.device.startswith("cuda") and torch.cuda.is_bf16_supported()),
        "checks": checks.rows,
        "failed": sum(row["status"] != "ok" for row in checks.rows),
        "machine": machine_info(),
    }
    write_result(result, args.out)
    print(table(checks.rows))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
