"""Our U-Net against peer U-Nets of the same size: training steps/s and sampling ms/step on this
machine, fp32 and bf16 autocast, all in one run.

Peers: diffusers `UNet2DModel` (mel) and `UNet1DModel` (waveform, the Dance Diffusion design),
audio-diffusion-pytorch `UNetV0` (both). Ours: the bundled digits model's shape (mel) and the
medium waveform shape of `unet_speed.py`. Each peer's width is chosen so that its parameter count
is within 10% of ours. Inputs, for training and sampling alike: mel `[32, 1, 80, 64]`, waveform
`[8, 1, 16384]`. A training step is forward, MSE loss, backward and AdamW (the fused kernel
audiodiff's trainer uses, for every model alike); a sampling step is one
forward pass under inference mode. Rounds are interleaved over every model (a warm-up first), so
background load hits all of them alike; medians are reported. Peers come from the `bench` extra
(pip install 'audiodiff[bench]'); a peer that cannot be imported or run is recorded with the
reason. `--diagnostics` adds `ours_patch1` (ours without patching), a diagnostic row, not a contender.

Without native bf16 (AVX2-only CPUs), PyTorch runs bf16 convolutions on reference kernels about
30x slower than fp32, so bf16 is then timed at batch 1 (`--bf16-batch`), one round, no warm-up:
enough to compare the models with each other, and marked as such in the JSON.

    python -m benchmarks.unet_vs_peers [--threads 2] [--rounds 2] [--bf16-rounds 1] [--bf16-batch N|full]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

if __package__ in (None, ""):  # run as a file: python benchmarks/unet_vs_peers.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.models.conditioning import ConditioningConfig
from audiodiff.models.unet import UNet, UNetConfig
from benchmarks.machine import RESULTS, command, machine_info, now, write_result
from benchmarks.unet_speed import SIZES

INPUTS = {2: (32, 1, 80, 64), 1: (8, 1, 16384)}  # [batch, channels, (mels, frames) | samples]
NUM_LABELS = 10
TARGET_SPEEDUP = 1.5
MATCH_TOLERANCE = 0.10
OURS = {2: SIZES[(2, "medium")], 1: SIZES[(1, "medium")]}


@dataclasses.dataclass
class Contender:
    """A U-Net to time: `build()` returns a module called as `(x, t, labels) -> v`."""

    name: str
    dims: int
    library: str
    config: dict
    build: Callable[[], nn.Module]
    diagnostic: bool = False


class _Ours(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        labels = [str(i) for i in range(NUM_LABELS)]
        self.net = UNet(UNetConfig(**config), ConditioningConfig(labels=labels))

    def forward(self, x, t, labels):
        return self.net(x, t, {"label": labels})


class _Diffusers2D(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        from diffusers import UNet2DModel

        self.net = UNet2DModel(**config)

    def forward(self, x, t, labels):
        return self.net(x, t * 1000, class_labels=labels).sample  # its time embedding expects DDPM steps


class _Diffusers1D(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        from diffusers import UNet1DModel

        self.net = UNet1DModel(**config)

    def forward(self, x, t, labels):
        return self.net(x, t).sample  # Fourier features of t; no class conditioning in this model


class _UNetV0(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        from audio_diffusion_pytorch import UNetV0

        self.net = UNetV0(**config)

    def forward(self, x, t, labels):
        return self.net(x, time=t)  # time conditioning only (its class/text plug-ins are separate)


def _diffusers_2d_config(width: int) -> dict:
    """The digits model's layout in diffusers blocks: 3 levels, attention on levels 1 and 2."""
    return dict(
        sample_size=(80, 64),
        in_channels=1,
        out_channels=1,
        block_out_channels=(width, 2 * width, 4 * width),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=48,
        norm_num_groups=16,
        num_class_embeds=NUM_LABELS,
    )


def _diffusers_1d_config(width: int) -> dict:
    """Dance Diffusion's layout (no-skip first block, plain blocks, attention blocks), 8 levels
    instead of 12 for 16384 samples; attention widths must be multiples of 32."""
    widths = tuple(width * k for k in (1, 1, 2, 2, 4, 4, 6, 6))
    return dict(
        sample_size=INPUTS[1][-1],
        in_channels=1,
        out_channels=1,
        extra_in_channels=2 * width,
        block_out_channels=widths,
        down_block_types=("DownBlock1DNoSkip",) + ("DownBlock1D",) * 4 + ("AttnDownBlock1D",) * 3,
        up_block_types=("AttnUpBlock1D",) * 3 + ("UpBlock1D",) * 4 + ("UpBlock1DNoSkip",),
        mid_block_type="UNetMidBlock1D",
    )


def _unetv0_2d_config(width: int) -> dict:
    return dict(
        dim=2,
        in_channels=1,
        channels=[width, 2 * width, 4 * width],
        factors=[1, 2, 2],
        items=[1, 1, 1],
        attentions=[0, 1, 1],
        attention_heads=4,
        attention_features=48,
        resnet_groups=4,
    )


def _unetv0_1d_config(width: int) -> dict:
    """The README's waveform design (factors 1, 4, 4, then 2s; attention at the deepest levels),
    six levels deep for 16384 samples."""
    return dict(
        dim=1,
        in_channels=1,
        channels=[width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width],
        factors=[1, 4, 4, 2, 2, 2],
        items=[1, 2, 2, 2, 2, 2],
        attentions=[0, 0, 0, 0, 1, 1],
        attention_heads=8,
        attention_features=64,
        resnet_groups=4,
    )


def contenders(diagnostics: bool = False) -> list[Contender]:
    """Ours and the peers; widths picked so parameter counts match ours within 10%."""
    out = []
    for dims, config in OURS.items():
        config = {**config, "dims": dims}
        out.append(Contender("ours", dims, "audiodiff", config, lambda c=config: _Ours(c)))
        if diagnostics:
            plain = {**config, "patch_size": 1}
            out.append(Contender("ours_patch1", dims, "audiodiff", plain, lambda c=plain: _Ours(c), diagnostic=True))
    peers = [
        ("diffusers_UNet2DModel", 2, "diffusers", _diffusers_2d_config(48), _Diffusers2D),
        ("adp_UNetV0", 2, "audio-diffusion-pytorch", _unetv0_2d_config(56), _UNetV0),
        ("diffusers_UNet1DModel", 1, "diffusers", _diffusers_1d_config(32), _Diffusers1D),
        ("adp_UNetV0", 1, "audio-diffusion-pytorch", _unetv0_1d_config(24), _UNetV0),
    ]
    for name, dims, library, config, cls in peers:
        out.append(Contender(name, dims, library, config, lambda c=config, k=cls: k(c)))
    return out


def train_step(model: nn.Module, optimizer, x: torch.Tensor, labels: torch.Tensor, precision: str) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = (model(x, torch.rand(x.shape[0]), labels).float() - x).pow(2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


@torch.inference_mode()
def sample_step(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, precision: str) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        model(x, torch.rand(x.shape[0]), labels)
    return time.perf_counter() - start


def _error(error: BaseException) -> str:
    """One line saying exactly what failed, for the JSON."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


def prepare(items: list[Contender]) -> tuple[dict, list[dict]]:
    """Build every contender; those that fail (missing package, bad config) become error rows."""
    built, failed = {}, []
    for item in items:
        try:
            torch.manual_seed(0)
            model = item.build()
            x = torch.randn(INPUTS[item.dims])
            with torch.inference_mode():
                out = model(x[:1], torch.rand(1), torch.zeros(1, dtype=torch.long))
            if out.shape != x[:1].shape:
                raise RuntimeError(f"output shape {list(out.shape)} != input shape {list(x[:1].shape)}")
            built[(item.name, item.dims)] = (item, model, torch.optim.AdamW(model.parameters(), 1e-4, fused=True))
        except Exception as error:  # a peer we cannot run is a result, not a crash
            failed.append({"name": item.name, "dims": item.dims, "library": item.library, "error": _error(error)})
            print(f"{item.name} (dims {item.dims}): cannot run: {failed[-1]['error']}", flush=True)
    return built, failed


def measure(built: dict, precision: str, rounds: int, shapes: dict[int, tuple], warm_up: bool = True) -> dict:
    """Seconds per train and sample step of every model on inputs of `shapes`: a warm-up round
    (unless `warm_up` is False), then interleaved timed rounds."""
    times = {key: {"train": [], "sample": []} for key in built}
    inputs = {dims: torch.randn(shape, generator=torch.Generator().manual_seed(1)) for dims, shape in shapes.items()}
    labels = {dims: torch.arange(shape[0]) % NUM_LABELS for dims, shape in shapes.items()}
    first = 0 if warm_up else 1
    for index in range(first, rounds + 1):  # round 0 is the warm-up
        for key, (item, model, optimizer) in built.items():
            x, y = inputs[item.dims], labels[item.dims]
            train = train_step(model, optimizer, x, y, precision)
            sample = sample_step(model, x, y, precision)
            if index > 0:
                times[key]["train"].append(train)
                times[key]["sample"].append(sample)
            print(
                f"{precision} round {index}{' (warm-up)' if index == 0 else ''}: {item.name} dims {item.dims}: "
                f"train {train:.2f} s, sample {sample * 1e3:.0f} ms",
                flush=True,
            )
    return times


def bf16_shapes(batch: str, native: bool) -> tuple[dict[int, tuple], str | None]:
    """Input shapes for bf16, and why they differ from fp32's (None when they do not)."""
    if batch == "full" or (batch == "auto" and native):
        return INPUTS, None
    size = 1 if batch == "auto" else int(batch)
    shapes = {dims: (size, *shape[1:]) for dims, shape in INPUTS.items()}
    why = (
        f"bf16 timed at batch {size}, one round without warm-up: this CPU has no native bf16, and PyTorch's "
        "reference bf16 kernels are ~30x slower than fp32; compare bf16 rows with each other, not with fp32"
    )
    return shapes, why


def summarise(rows: list[dict]) -> list[dict]:
    """Per dims and precision: ours against the fastest peer, training and sampling."""
    out = []
    for dims in INPUTS:
        for precision in dict.fromkeys(row["precision"] for row in rows):
            group = [row for row in rows if row["dims"] == dims and row["precision"] == precision]
            ours = next((row for row in group if row["name"] == "ours"), None)
            peers = [row for row in group if not row["diagnostic"] and row["name"] != "ours"]
            if ours is None or not peers:
                continue
            fastest_train = min(peers, key=lambda row: row["train_s_per_step"])
            fastest_sample = min(peers, key=lambda row: row["sample_ms_per_step"])
            train_speedup = fastest_train["train_s_per_step"] / ours["train_s_per_step"]
            sample_speedup = fastest_sample["sample_ms_per_step"] / ours["sample_ms_per_step"]
            out.append(
                {
                    "dims": dims,
                    "precision": precision,
                    "fastest_peer_train": fastest_train["name"],
                    "train_speedup": round(train_speedup, 2),
                    "fastest_peer_sample": fastest_sample["name"],
                    "sample_speedup": round(sample_speedup, 2),
                    "target": TARGET_SPEEDUP,
                    "target_met": train_speedup >= TARGET_SPEEDUP and sample_speedup >= TARGET_SPEEDUP,
                }
            )
    return out


def table(rows: list[dict], failed: list[dict]) -> str:
    lines = [f"{'model':<24} {'dims':>4} {'prec':>5} {'params':>8} {'vs ours':>8} {'train it/s':>10} {'sample ms':>10}"]
    for row in rows:
        lines.append(
            f"{row['name']:<24} {row['dims']:>4} {row['precision']:>5} {row['parameters'] / 1e6:>7.2f}M "
            f"{row['parameters_vs_ours']:>+7.1%} {row['train_steps_per_s']:>10.3f} {row['sample_ms_per_step']:>10.1f}"
        )
    for row in failed:
        lines.append(f"{row['name']:<24} {row['dims']:>4}  not run: {row['error']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="timed fp32 rounds after the warm-up")
    parser.add_argument(
        "--bf16-rounds", type=int, default=1, help="timed bf16 rounds (bf16 is slow without native support)"
    )
    parser.add_argument(
        "--bf16-batch", default="auto", help="bf16 batch: auto (full inputs with native bf16, else 1), N or full"
    )
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--diagnostics", action="store_true", help="also time ours without patching (slow)")
    parser.add_argument("--out", type=Path, default=RESULTS / "unet_vs_peers.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    machine_before = machine_info(("diffusers", "audio-diffusion-pytorch", "a-unet"))
    built, failed = prepare(contenders(args.diagnostics))
    ours_params = {
        dims: sum(p.numel() for p in model.parameters())
        for (name, dims), (_, model, _) in built.items()
        if name == "ours"
    }
    rows, notes = [], []
    for precision in args.precisions.split(","):
        rounds, shapes, warm_up = args.rounds, INPUTS, True
        if precision == "bf16":
            rounds = args.bf16_rounds
            shapes, why = bf16_shapes(args.bf16_batch, machine_before["native_bf16"])
            warm_up = why is None
            notes += [why] if why else []
        for (name, dims), measured in measure(built, precision, rounds, shapes, warm_up).items():
            item, model, _ = built[(name, dims)]
            parameters = sum(p.numel() for p in model.parameters())
            train_s, sample_s = statistics.median(measured["train"]), statistics.median(measured["sample"])
            rows.append(
                {
                    "name": name,
                    "library": item.library,
                    "dims": dims,
                    "precision": precision,
                    "diagnostic": item.diagnostic,
                    "parameters": parameters,
                    "parameters_vs_ours": parameters / ours_params[dims] - 1 if dims in ours_params else None,
                    "input": list(shapes[dims]),
                    "rounds": rounds,
                    "warm_up": warm_up,
                    "train_steps_per_s": round(1 / train_s, 3),
                    "train_s_per_step": round(train_s, 4),
                    "sample_ms_per_step": round(sample_s * 1e3, 1),
                    "train_s_all": [round(v, 4) for v in measured["train"]],
                    "sample_ms_all": [round(v * 1e3, 1) for v in measured["sample"]],
                }
            )
    unmatched = [
        row
        for row in rows
        if row["parameters_vs_ours"] is not None and abs(row["parameters_vs_ours"]) > MATCH_TOLERANCE
    ]
    for row in unmatched:
        row["note"] = (
            f"parameter count {row['parameters_vs_ours']:+.1%} off ours, outside the {MATCH_TOLERANCE:.0%} match"
        )
    summary = summarise(rows)
    print()
    print(table(rows, failed))
    for note in notes:
        print(f"note: {note}")
    for line in summary:
        print(
            f"dims {line['dims']} {line['precision']}: ours vs fastest peer: train {line['train_speedup']:.2f}x "
            f"({line['fastest_peer_train']}), sample {line['sample_speedup']:.2f}x ({line['fastest_peer_sample']}); "
            f"target {TARGET_SPEEDUP}x {'met' if line['target_met'] else 'MISSED'}"
        )
    result = {
        "benchmark": "unet_vs_peers",
        "date": now(),
        "command": command(),
        "machine": {**machine_before, "load_average_after": machine_info()["load_average"]},
        "inputs": {f"dims{dims}": list(shape) for dims, shape in INPUTS.items()},
        "configs": {
            f"{item.name}_dims{item.dims}": {k: list(v) if isinstance(v, tuple) else v for k, v in item.config.items()}
            for item, _, _ in built.values()
        },
        "results": rows,
        "not_run": failed,
        "summary": summary,
        "notes": notes,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
