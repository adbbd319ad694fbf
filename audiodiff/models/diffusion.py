"""The model layer: a diffusion network built from its run config, and loaded from a checkpoint.

Training and inference both come here; neither imports the other. `load_diffusion` reads a
checkpoint directory (config.json + model.safetensors) strictly and returns the network, its
`DiffusionRunConfig` and the provenance keys; `build_model` builds the backbone a config names,
checking its size on the meta device first so a corrupt or hostile config cannot allocate
gigabytes.

    model = build_model(config)                      # UNet(config.model, config.conditioning, config.mel)
    model, config, info = load_diffusion("runs/x")   # the EMA weights, strictly
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from audiodiff.bundled import bundled_names, find_checkpoint
from audiodiff.checkpoint import (
    CONFIG,
    INFO_KEYS,
    WEIGHTS,
    CheckpointError,
    check_top_level,
    load_state_dict,
    read_json,
)
from audiodiff.config import ConfigError, DiffusionRunConfig, from_dict
from audiodiff.models.unet import UNet

__all__ = [
    "BACKBONES",
    "DiffusionModel",
    "MAX_PARAMETERS",
    "RUN_SECTIONS",
    "build_model",
    "describe_conditions",
    "load_diffusion",
    "parse_run_config",
]

MAX_PARAMETERS = 2_000_000_000  # refuse configs that would build a model larger than this
RUN_SECTIONS = [f.name for f in dataclasses.fields(DiffusionRunConfig)]

BACKBONES: dict[str, type[nn.Module]] = {"unet": UNet}
"""Networks a diffusion model can use: each takes (model config, conditioning config, MelSpec)
and maps (x_t, t, cond) -> a prediction of x_t's shape. Today the U-Net (1D or 2D)."""


def build_model(config: DiffusionRunConfig, where: str = "config", backbone: str = "unet") -> nn.Module:
    """Build the backbone a config describes, after checking its size on the meta device."""
    if backbone not in BACKBONES:
        raise ConfigError(f"{where}: unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    network = BACKBONES[backbone]
    try:
        with torch.device("meta"):
            probe = network(config.model, config.conditioning, config.mel)
    except (RuntimeError, ValueError, TypeError, OverflowError) as error:  # e.g. sizes that overflow
        raise CheckpointError(
            f"{where}: cannot build the model it describes ({error}); the config is corrupt"
        ) from None
    count = sum(p.numel() for p in probe.parameters())
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{where}: the model would have {count / 1e9:.1f}B parameters (limit {MAX_PARAMETERS / 1e9:.0f}B); "
            "the config is corrupt or hostile"
        )
    return network(config.model, config.conditioning, config.mel)


def parse_run_config(data: dict, where: str) -> DiffusionRunConfig:
    """A checkpoint's config.json as a `DiffusionRunConfig`, refusing unknown sections."""
    if data.get("kind") != "diffusion":
        raise CheckpointError(f"{where}: kind={data.get('kind')!r}, not a diffusion model checkpoint")
    check_top_level(data, [*RUN_SECTIONS, *INFO_KEYS], where)
    try:
        return from_dict(DiffusionRunConfig, {k: v for k, v in data.items() if k in RUN_SECTIONS})
    except ConfigError as error:
        raise CheckpointError(f"{where}: {error}") from None


def load_diffusion(name_or_path: str | os.PathLike) -> tuple[nn.Module, DiffusionRunConfig, dict]:
    """(network with the checkpoint's weights, its run config, its info: provenance keys and
    `path`) from a bundled name, a checkpoint directory or a run directory."""
    folder = find_checkpoint(name_or_path, lambda: f"bundled models: {names}" if (names := bundled_names()) else "")
    data = read_json(folder / CONFIG)
    config = parse_run_config(data, str(folder / CONFIG))
    model = build_model(config, str(folder / CONFIG))
    load_state_dict(folder / WEIGHTS, model)
    info = {k: v for k, v in data.items() if k not in RUN_SECTIONS}
    info["path"] = str(Path(folder))
    return model, config, info


class DiffusionModel:
    """A trained diffusion model as training needs it (a teacher, a `train.init_from` source):
    the network, its run config, its provenance and, for latent models, its autoencoder. No
    vocoder is loaded; the inference `Pipeline` joins one."""

    def __init__(self, model: nn.Module, config: DiffusionRunConfig, info: dict, autoencoder=None):
        self.model, self.config, self.info, self.autoencoder = model, config, info, autoencoder

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, autoencoder=None) -> DiffusionModel:
        """A bundled name, a checkpoint directory or a run directory (strict loading)."""
        from audiodiff.spaces import space_class

        model, config, info = load_diffusion(name_or_path)
        folder = Path(info["path"])
        parts = space_class(config.data).load_parts(folder, config, vocoder="griffin_lim", autoencoder=autoencoder)
        return cls(model, config, info, parts.get("autoencoder"))


def describe_conditions(name_or_path: str | os.PathLike) -> list:
    """The `ConditionSpec`s of a checkpoint's conditions, read from its config alone (the
    network is built on the meta device: no weights are read)."""
    from audiodiff.diffusion.distill import GUIDANCE

    folder = find_checkpoint(name_or_path, lambda: f"bundled models: {names}" if (names := bundled_names()) else "")
    config = parse_run_config(read_json(folder / CONFIG), str(folder / CONFIG))
    with torch.device("meta"):
        model = build_model(config, str(folder / CONFIG))
    return [spec for spec in model.conditioner.specs() if spec.name != GUIDANCE]
