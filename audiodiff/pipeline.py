"""`Pipeline`: a trained diffusion model, its sampler settings and its vocoder, composed in one
place. Loads from a checkpoint directory or a bundled name, generates audio, saves itself.

    pipe = Pipeline.from_pretrained("digits")
    out = pipe.generate(label="seven", n=4, steps=20, seed=0)
    out.audio  # [n, channels, samples] float32 in [-1, 1]; out.sample_rate
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from audiodiff.audio import MelSpec
from audiodiff.checkpoint import CONFIG, WEIGHTS, CheckpointError, load_state_dict, read_json, resolve_checkpoint, save_tensors, write_checkpoint, write_json
from audiodiff.config import ConfigError, DiffusionRunConfig, from_dict, to_dict
from audiodiff.diffusion.objective import angles_for_steps
from audiodiff.diffusion.samplers import get_sampler, guided, net_as_model
from audiodiff.models.unet import UNet
from audiodiff.vocoder import GriffinLimVocoder, Vocoder, check_compatible

__all__ = ["GenerateOutput", "Pipeline", "bundled_path", "BUNDLED_DIR"]

BUNDLED_DIR = Path(__file__).parent / "weights"
MAX_PARAMETERS = 2_000_000_000  # refuse configs that would build a model larger than this
RUN_SECTIONS = [f.name for f in dataclasses.fields(DiffusionRunConfig)]


def bundled_path(name: str) -> Path | None:
    """The directory of a model shipped inside the package, if `name` is one."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    folder = BUNDLED_DIR / name
    return folder if (folder / CONFIG).is_file() else None


def bundled_names() -> list[str]:
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / CONFIG).is_file() and read_json(p / CONFIG).get("kind") == "diffusion")


@dataclasses.dataclass
class GenerateOutput:
    audio: torch.Tensor  # [n, channels, samples], float32 in [-1, 1]
    sample_rate: int
    seeds: list[int]
    mel: torch.Tensor | None = None  # [n, n_mels, frames] for mel models


def build_model(config: DiffusionRunConfig, where: str = "config") -> UNet:
    """Build the U-Net a config describes, after checking its size on the meta device."""
    with torch.device("meta"):
        probe = UNet(config.model, config.conditioning)
    count = sum(p.numel() for p in probe.parameters())
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{where}: the model would have {count / 1e9:.1f}B parameters (limit {MAX_PARAMETERS / 1e9:.0f}B); the config is corrupt or hostile"
        )
    return UNet(config.model, config.conditioning)


def parse_run_config(data: dict, where: str) -> DiffusionRunConfig:
    if data.get("kind") != "diffusion":
        raise CheckpointError(f"{where}: kind={data.get('kind')!r}, not a diffusion model checkpoint")
    try:
        return from_dict(DiffusionRunConfig, {k: v for k, v in data.items() if k in RUN_SECTIONS})
    except ConfigError as error:
        raise CheckpointError(f"{where}: {error}") from None


class Pipeline:
    def __init__(
        self,
        model: UNet,
        config: DiffusionRunConfig,
        vocoder: Vocoder | None = None,
        info: dict | None = None,
        device: str | torch.device = "cpu",
    ):
        self.model = model.eval().to(device)
        self.config = config
        self.device = torch.device(device)
        self.info = info or {}
        self.is_mel = config.data.representation == "mel"
        self.mel_spec: MelSpec | None = config.mel if self.is_mel else None
        if self.is_mel:
            vocoder = vocoder or GriffinLimVocoder(config.mel, config.sampling.griffin_lim_iters)
            check_compatible(config.mel, vocoder)
        self.vocoder = vocoder

    # -- loading and saving

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, vocoder: Vocoder | str | None = None, device: str = "cpu"
    ) -> "Pipeline":
        """A bundled model name (e.g. "digits"), a checkpoint directory or a run directory."""
        folder = bundled_path(str(name_or_path))
        if folder is None:
            try:
                folder = resolve_checkpoint(name_or_path)
            except CheckpointError as error:
                names = bundled_names()
                hint = f"; bundled models: {names}" if names else ""
                raise CheckpointError(f"{error}{hint}") from None
        data = read_json(folder / CONFIG)
        config = parse_run_config(data, str(folder / CONFIG))
        model = build_model(config, str(folder / CONFIG))
        load_state_dict(folder / WEIGHTS, model)
        if config.data.representation == "mel":
            choice = vocoder if vocoder is not None else config.sampling.vocoder
            if isinstance(choice, str):
                vocoder = cls._load_vocoder(choice, folder, config)
            else:
                vocoder = choice
        info = {k: v for k, v in data.items() if k not in RUN_SECTIONS}
        info["path"] = str(folder)
        return cls(model, config, vocoder, info, device)

    @staticmethod
    def _load_vocoder(choice: str, folder: Path, config: DiffusionRunConfig) -> Vocoder:
        if choice == "griffin_lim":
            return GriffinLimVocoder(config.mel, config.sampling.griffin_lim_iters)
        local = folder / choice
        return Vocoder.from_pretrained(local if (local / CONFIG).is_file() else choice, config.mel)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write config.json + model.safetensors (and the vocoder, if trained, in `vocoder/`)."""
        config = to_dict(self.config)
        has_weights = self.vocoder is not None and not isinstance(self.vocoder, GriffinLimVocoder)
        config["sampling"]["vocoder"] = "vocoder" if has_weights else "griffin_lim"
        data = {**config, **{k: v for k, v in self.info.items() if k != "path"}}

        def write(folder: Path) -> None:
            write_json(folder / CONFIG, data)
            save_tensors(folder / WEIGHTS, self.model.state_dict())
            if has_weights:
                self.vocoder.save_pretrained(folder / "vocoder")

        return write_checkpoint(path, write)

    # -- what the model takes

    @property
    def sample_rate(self) -> int:
        return self.config.data.sample_rate

    @property
    def conditions(self) -> list[str]:
        return self.config.conditioning.names()

    @property
    def labels(self) -> list[str]:
        return list(self.config.conditioning.labels)

    def default_duration(self) -> float:
        return self.config.data.segment_seconds

    def _shape(self, n: int, duration: float | None) -> tuple[int, ...]:
        seconds = self.default_duration() if duration is None else float(duration)
        if not 0 < seconds <= 600:
            raise ValueError(f"duration={seconds} s: must be between 0 and 600 seconds")
        samples = int(round(seconds * self.sample_rate))
        if self.is_mel:
            frames = max(1, self.mel_spec.num_frames(samples))
            return (n, self.config.model.in_channels, self.mel_spec.n_mels, frames)
        return (n, self.config.data.channels, samples)

    # -- generation

    def generate(
        self,
        label=None,
        text=None,
        n: int = 1,
        steps: int | None = None,
        sampler: str | None = None,
        guidance: float | None = None,
        seed: int = 0,
        duration: float | None = None,
        progress: bool = False,
        negative_label=None,
        negative_text=None,
        guidance_interval: tuple[float, float] = (0.0, 1.0),
        callback: Callable[[dict], None] | None = None,
        **numbers,
    ) -> GenerateOutput:
        """Sample `n` clips. Item i uses seed `seed + i`, so a seed gives the same audio at any
        batch size. Conditions left as None are unconditional."""
        if n < 1:
            raise ValueError(f"n={n}: must be at least 1")
        sampling = self.config.sampling
        steps = sampling.steps if steps is None else int(steps)
        cond = self.model.conditioner.prepare(n, label=label, text=text, **numbers)
        negative = self.model.conditioner.prepare(n, label=negative_label, text=negative_text)
        scale = sampling.guidance if guidance is None else float(guidance)
        if not cond and not negative:
            scale = 1.0  # nothing to guide towards
        seeds = [int(seed) + i for i in range(n)]
        x = self.initial_noise(self._shape(n, duration), seeds)
        x = self.sample(x, cond, steps, sampler or sampling.sampler, scale, negative, guidance_interval, seeds, progress, callback)
        return self.decode(x, seeds)

    def initial_noise(self, shape: tuple[int, ...], seeds: list[int]) -> torch.Tensor:
        return torch.stack([torch.randn(shape[1:], generator=torch.Generator().manual_seed(s)) for s in seeds]).to(self.device)

    def sample(
        self,
        x: torch.Tensor,
        cond: dict,
        steps: int,
        sampler: str,
        guidance: float,
        negative: dict | None = None,
        guidance_interval: tuple[float, float] = (0.0, 1.0),
        seeds: list[int] | None = None,
        progress: bool = False,
        callback: Callable[[dict], None] | None = None,
        t_start: float = 1.0,
    ) -> torch.Tensor:
        """Run a sampler from noise level `t_start` (1 = pure noise) down to 0."""
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps={steps}: must be between 1 and 1000")
        sample_fn = get_sampler(sampler)
        model = guided(net_as_model(self.model), guidance, negative or {}, guidance_interval)
        angles = angles_for_steps(steps, self.config.diffusion.shift, t_start=t_start)
        generators = [torch.Generator().manual_seed(s + 10_000_019) for s in (seeds or range(x.shape[0]))]

        def noise(like: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.randn(like.shape[1:], generator=g) for g in generators]).to(like)

        bar = tqdm(total=steps, disable=not progress, desc="sampling", unit="step", leave=False)

        def on_step(info: dict) -> None:
            bar.update(1)
            if callback is not None:
                callback(info)

        try:
            with torch.inference_mode():
                return sample_fn(model, x, angles, cond, on_step, noise)
        finally:
            bar.close()

    def decode(self, x: torch.Tensor, seeds: list[int]) -> GenerateOutput:
        """Model output -> audio: the vocoder for mel models, a clamp for waveform models."""
        if self.is_mel:
            mel = x[:, 0].float().clamp(-1.0, 1.5)  # below -1 is below the log floor
            audio = self.vocoder(mel).float().cpu()
            return GenerateOutput(audio, self.sample_rate, seeds, mel.cpu())
        return GenerateOutput(x.float().clamp(-1, 1).cpu(), self.sample_rate, seeds)
