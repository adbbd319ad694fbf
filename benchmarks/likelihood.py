"""Likelihood checks, exact case first: the probability-flow ODE estimate (audiodiff.diffusion.likelihood)
on Gaussian data with its exact v-predictor against the closed-form log-density, at several step
counts; then a trained model's NLL (bits/dim) of real held-out clips against the same clips with
their frames shuffled and against Gaussian noise (real audio should be the most probable).

    python benchmarks/likelihood.py --model digits --data data/digits [--clips 8] [--steps 6]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.diffusion.likelihood import gaussian_v_model, ode_log_likelihood
from audiodiff.diffusion.objective import angle_from_t
from audiodiff.metrics.scoring import likelihood_report
from audiodiff.metrics.sets import load_clips
from benchmarks.machine import command, machine_info, now, write_result


def gaussian_check(dim: int = 8, count: int = 300, settings=((2, 1), (4, 1), (8, 1), (16, 1), (8, 16))) -> list[dict]:
    """Estimate minus truth (nats per clip) on N(mean, Σ) data with a full covariance, at (steps, probes)."""
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    covariance = q @ torch.diag(torch.linspace(0.02, 1.5, dim, dtype=torch.float64)) @ q.T
    mean = torch.randn(dim, generator=generator, dtype=torch.float64)
    model = gaussian_v_model(mean, covariance)
    data = (
        mean + torch.randn(count, dim, generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(covariance).T
    )
    c, s = (float(f(angle_from_t(torch.tensor(1e-3, dtype=torch.float64)))) for f in (torch.cos, torch.sin))
    truth = torch.distributions.MultivariateNormal(
        c * mean, c**2 * covariance + s**2 * torch.eye(dim, dtype=torch.float64)
    ).log_prob(data)
    rows = []
    for steps, probes in settings:
        estimate = ode_log_likelihood(
            model, data, steps=steps, probes=probes, generator=torch.Generator().manual_seed(1)
        )["log_likelihood"]
        error = float((estimate - truth).mean())
        standard_error = float((estimate - truth).std()) / math.sqrt(len(estimate))  # of the estimate's error
        rows.append(
            {
                "steps": steps,
                "probes": probes,
                "true_nll_nats": round(float(-truth.mean()), 4),
                "estimated_nll_nats": round(float(-estimate.mean()), 4),
                "error": round(error, 4),
                "standard_error": round(standard_error, 4),
                "within_2_se": abs(error) < 2 * standard_error,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="digits")
    parser.add_argument("--data", default="data/digits")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/likelihood.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gaussian = gaussian_check()
    for row in gaussian:
        print(
            f"Gaussian, {row['steps']:>2} steps, {row['probes']:>2} probes: NLL {row['estimated_nll_nats']:.3f} vs exact {row['true_nll_nats']:.3f} "
            f"(error {row['error']:+.3f}, SE {row['standard_error']:.3f})"
        )
    audio = likelihood_report(args.model, load_clips(args.data, split="test"), args.clips, args.steps)
    for name, row in audio["sets"].items():
        print(f"{args.model}: {name:<22} {row['mean_bits_per_dim']:8.3f} ± {row['standard_error']:.3f} bits/dim")
    write_result(
        {
            "benchmark": "likelihood",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "gaussian": gaussian,
            "audio": audio,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
