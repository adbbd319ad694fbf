"""How well a waveform model removes noise at each noise level, where the clip is quiet and where
it is loud: the measurement behind a noise floor in generated one-shots.

For training clips of a wave model's data, each is noised at a fixed level t (θ = t π/2) and the
model's v-prediction is scored against the true v, split by the audio's envelope: "quiet" samples
are within 10 ms of nothing above `--quiet-db` dBFS. Predicting nothing scores about 1.0 at low t;
where the clip is quiet the exact answer is easy (the noise is x_t / σ), so a loss near 1 there
means the last sampling steps leave the noise in every tail.

    python benchmarks/denoise_by_level.py --model runs/drums [--data data/drums] [--count 48]
        [--compare benchmarks/results/denoise_by_level_linear.json] [--figure docs/examples/denoise-by-level.png]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio
from audiodiff.diffusion.objective import HALF_PI, noised, v_target
from audiodiff.pipeline import Pipeline
from benchmarks.machine import command, machine_info, now, write_result

LEVELS = (0.01, 0.03, 0.06, 0.1, 0.2, 0.4, 0.7)
BATCH = 8


def training_clips(pipe: Pipeline, data: Path, count: int) -> torch.Tensor:
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    rows = [row for row in rows if row.get("split", "train") == "train"][:count]
    samples = round(pipe.config.data.segment_seconds * pipe.sample_rate)
    clips = [load_audio(data / row["path"], pipe.sample_rate, pipe.space.channels)[0][:, :samples] for row in rows]
    return torch.stack([F.pad(clip, (0, samples - clip.shape[-1])) for clip in clips])


def quiet_mask(audio: torch.Tensor, rate: int, quiet_db: float) -> torch.Tensor:
    """`[n, 1, samples]`: True within 10 ms of nothing above `quiet_db` dBFS (any channel)."""
    reach = rate // 100
    envelope = F.max_pool1d(audio.abs().amax(1, keepdim=True), 2 * reach + 1, 1, reach)[..., : audio.shape[-1]]
    return envelope < 10 ** (quiet_db / 20)


def measure(pipe: Pipeline, audio: torch.Tensor, quiet_db: float, seed: int = 0) -> list[dict]:
    if pipe.space.name != "wave":
        raise SystemExit(f"{pipe.info.get('path', 'the model')}: a {pipe.space.name} model; this measures wave models")
    generator = torch.Generator().manual_seed(seed)
    x = pipe.space.encode(audio)
    quiet = quiet_mask(audio, pipe.sample_rate, quiet_db).expand_as(x)
    network = pipe._network()
    rows = []
    for t in LEVELS:
        theta = torch.full((x.shape[0],), t * HALF_PI)
        noise = torch.randn(x.shape, generator=generator)
        x_t = noised(x, theta, noise)
        with torch.no_grad():
            v = torch.cat(
                [network(x_t[i : i + BATCH], theta[i : i + BATCH] / HALF_PI, {}) for i in range(0, len(x), BATCH)]
            )
        error = (v - v_target(x, theta, noise)) ** 2
        rows.append(
            {
                "t": t,
                "sigma": round(math.sin(t * HALF_PI), 4),
                "v_loss": round(float(error.mean()), 4),
                "v_loss_quiet": round(float(error[quiet].mean()), 4) if quiet.any() else None,
                "v_loss_loud": round(float(error[~quiet].mean()), 4) if (~quiet).any() else None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def figure(results: list[dict], path: str) -> None:
    """v-loss against the noise level, quiet and loud samples, one colour per result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for index, result in enumerate(results):
        colour = f"C{index}"
        name = f"{result['space']}, step {result['training_step']}"
        levels = result["levels"]
        sigmas = [row["sigma"] for row in levels]
        ax.plot(sigmas, [row["v_loss_quiet"] for row in levels], "o-", color=colour, label=f"{name}: quiet")
        ax.plot(sigmas, [row["v_loss_loud"] for row in levels], "s--", color=colour, label=f"{name}: loud")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("noise level sigma")
    ax.set_ylabel("v-loss (1.0: predicts nothing at low sigma)")
    ax.set_title("What the network denoises, by noise level (training clips)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="drums")
    parser.add_argument("--data", default="data/drums")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--quiet-db", type=float, default=-50.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/denoise_by_level.json")
    parser.add_argument("--compare", action="append", default=[], help="earlier results of this script to plot beside")
    parser.add_argument("--figure", help="a plot of this run's levels and --compare's")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pipe = Pipeline.from_pretrained(args.model)
    audio = training_clips(pipe, Path(args.data), args.count)
    x_quiet = float(quiet_mask(audio, pipe.sample_rate, args.quiet_db).float().mean())
    rows = measure(pipe, audio, args.quiet_db)
    result = {
        "benchmark": "denoise_by_level",
        "date": now(),
        "command": command(),
        "machine": machine_info(),
        "model": args.model,
        "training_step": (pipe.info.get("training") or {}).get("step"),
        "space": pipe.space.description,
        "clips": len(audio),
        "note": "training clips (not held out): this measures what the network learned to denoise",
        "quiet_share": round(x_quiet, 3),
        "levels": rows,
    }
    write_result(result, args.out)
    if args.figure:
        figure([json.loads(Path(other).read_text()) for other in args.compare] + [result], args.figure)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
