"""Ship trained models inside the package (audiodiff/weights/NAME), in float16.

    python scripts/bundle.py vocoder runs/vocoder-16k --name vocoder-16k [--match-mel 8] [--metrics fidelity=benchmarks/results/vocoder_fidelity.json]
    python scripts/bundle.py diffusion runs/digits-mel --name digits --vocoder vocoder-16k [--steps 12] [--metrics eval=eval/digits/metrics.json]
    python scripts/bundle.py autoencoder runs/mel-vae-16k --name mel-vae-16k [--metrics latent=benchmarks/results/latent_vs_mel.json]
    python scripts/bundle.py upsampler runs/upsampler-44k --name upsampler-44k [--metrics lsd=benchmarks/results/upsampler.json]

The diffusion model refers to the bundled vocoder by name, so two models can share one vocoder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from audiodiff.bundled import BUNDLED_DIR
from audiodiff.checkpoint import resolve_checkpoint
from audiodiff.pipeline import Pipeline
from audiodiff.vocoder import Vocoder


def earlier_training(info: dict, source: Path) -> dict | None:
    """The training record a fine-tune started from. Bundling the same run again (over the model
    it started from, now its own bundle) takes that bundle's earlier record, not itself twice."""
    if info.get("source") == str(source):
        return (info.get("training") or {}).get("before")
    return info.get("training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["diffusion", "vocoder", "autoencoder", "upsampler"])
    parser.add_argument("checkpoint", help="a checkpoint or run directory")
    parser.add_argument("--name", required=True)
    parser.add_argument("--vocoder", help="diffusion: the bundled vocoder to use (default: Griffin-Lim)")
    parser.add_argument(
        "--metrics",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="record a metrics JSON (from `audiodiff eval` or a benchmark) in config.json under NAME",
    )
    parser.add_argument("--steps", type=int, help="diffusion: default sampling steps of the bundled model")
    parser.add_argument("--match-mel", type=int, help="vocoder: passes of mel matching it runs by default")
    args = parser.parse_args()
    target = BUNDLED_DIR / args.name
    source = resolve_checkpoint(args.checkpoint)
    metrics = {}
    for item in args.metrics:
        name, _, path = item.partition("=")
        found = json.loads(Path(path).read_text())
        if "scores" in found:  # an `audiodiff eval` result: keep the summary, not every clip's numbers
            found = {
                k: found[k]
                for k in ("date", "sampling", "generated", "reference", "floor", "scores", "per_class_accuracy")
                if k in found
            }
        metrics[name] = found
    if args.kind == "autoencoder":
        from audiodiff.latent import Autoencoder

        autoencoder = Autoencoder.from_pretrained(source)
        autoencoder.info = {k: v for k, v in autoencoder.info.items() if k not in ("path", "dataset")} | {
            "source": str(source),
            "metrics": metrics,
        }
        autoencoder.save_pretrained(target, dtype=torch.float16)
    elif args.kind == "upsampler":
        from audiodiff.upsampler import Upsampler

        upsampler = Upsampler.from_pretrained(source)
        upsampler.info = {k: v for k, v in upsampler.info.items() if k not in ("path", "dataset")} | {
            "source": str(source),
            "metrics": metrics,
        }
        upsampler.save_pretrained(target, dtype=torch.float16)
    elif args.kind == "vocoder":
        vocoder = Vocoder.from_pretrained(source)
        recipe = vocoder.info.pop("recipe", None) or {}
        start = (recipe.get("train") or {}).get("init_from")
        if start:  # a continued run: say what it started from, with that one's own training record
            earlier = earlier_training(Vocoder.from_pretrained(start).info, source)
            vocoder.info["training"] = {**vocoder.info.get("training", {}), "init_from": start, "before": earlier}
        vocoder.info["source"] = str(source)  # so that bundling this run again knows its own record
        if args.match_mel is not None:
            vocoder.match_mel = args.match_mel
        if metrics:
            vocoder.info["metrics"] = metrics
        vocoder.save_pretrained(target, dtype=torch.float16)
    else:
        pipe = Pipeline.from_pretrained(source, vocoder=args.vocoder or "griffin_lim")
        pipe.info.pop("dataset", None)
        start = pipe.config.train.init_from
        if start:  # a fine-tune: say what it started from, with that one's own training record
            earlier = earlier_training(Pipeline.from_pretrained(start, vocoder="griffin_lim").info, source)
            pipe.info["training"] = {**pipe.info.get("training", {}), "init_from": start, "before": earlier}
        pipe.info["source"] = str(source)
        pipe.info["metrics"] = metrics
        if args.steps:
            pipe.config.sampling.steps = args.steps
        pipe.save_pretrained(target, dtype=torch.float16, vocoder_name=args.vocoder)
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"{target}: {size / 1e6:.1f} MB")
    total = sum(f.stat().st_size for f in BUNDLED_DIR.rglob("*") if f.is_file())
    print(f"all bundled weights: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
