"""Adapters: low-rank fine-tuning (LoRA, DoRA) of any diffusion model, through `peft`.

A run with `train.adapter` trains only the adapter's weights on top of a frozen `train.init_from`
model and exports only them: `model.safetensors` holds the adapter, `config.json` says
`kind: adapter`, the rank, alpha and target layers, and names its base model with a digest of the
base weights, so an adapter is refused on any other base. Loading is strict, as for every
checkpoint, and runs no code from the files.

    pipe = Pipeline.from_pretrained("notes", adapters=["runs/my-lora"], adapter_scale=0.8)
    pipe = Pipeline.from_pretrained("notes", adapters={"runs/a": 1.0, "runs/b": 0.5})
    pipe.merge_adapters()  # fold them into the weights: sampling costs what the base costs

Targets name groups of the U-Net's layers: "attention" (self- and cross-attention projections)
and "conv" (the residual blocks' convolutions); a list of module-name suffixes also works.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from pathlib import Path

import torch
from torch import nn

from audiodiff.checkpoint import CONFIG, WEIGHTS, CheckpointError, load_state_dict, read_json
from audiodiff.errors import UserError

__all__ = [
    "ADAPTER_KIND",
    "AdapterConfig",
    "AdapterError",
    "TARGET_GROUPS",
    "adapter_state",
    "attach",
    "check_scale",
    "load_adapters",
    "merge_adapters",
    "read_adapter",
    "weights_digest",
]

ADAPTER_KIND = "adapter"
TARGET_GROUPS = {
    "attention": ("qkv", "out", "cross_q", "cross_kv", "cross"),
    "conv": ("conv1", "conv2"),
}
MAX_SCALE = 10.0


class AdapterError(UserError, ValueError):
    """An adapter that cannot be used here; the message names the file, the value and the fix."""


@dataclasses.dataclass
class AdapterConfig:
    """`train.adapter`: what to train on top of the frozen base."""

    kind: str = "lora"  # lora | dora (weight-decomposed LoRA)
    rank: int = 8
    alpha: float = 16.0  # the update is scaled by alpha / rank
    targets: list[str] = dataclasses.field(default_factory=lambda: ["attention", "conv"])
    dropout: float = 0.0

    def __post_init__(self):
        if self.kind not in ("lora", "dora"):
            raise AdapterError(f"train.adapter.kind={self.kind!r}; choose lora or dora")
        if not isinstance(self.rank, int) or self.rank < 1:
            raise AdapterError(f"train.adapter.rank={self.rank!r}: a whole number, at least 1 (e.g. 8)")
        if not math.isfinite(float(self.alpha)) or self.alpha <= 0:
            raise AdapterError(f"train.adapter.alpha={self.alpha!r}: a positive number (e.g. twice the rank)")
        if isinstance(self.targets, str):
            self.targets = [self.targets]


def _peft():
    """The peft package, or an error that says how to install it."""
    try:
        import peft
        import peft.tuners.lora
    except ImportError:
        raise AdapterError("adapters need peft: pip install 'audiodiff[adapters]' (or pip install peft)") from None
    return peft


def target_modules(model: nn.Module, targets: list[str]) -> list[str]:
    """Full names of the Linear / Conv layers that `targets` (group names or name suffixes) pick."""
    suffixes = {suffix for target in targets for suffix in TARGET_GROUPS.get(target, (target,))}
    layers = (nn.Linear, nn.Conv1d, nn.Conv2d)
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, layers) and name.rpartition(".")[2] in suffixes and not name.startswith("conditioner.")
    ]
    if not names:
        raise AdapterError(
            f"train.adapter.targets={targets}: no layer of this model matches; use "
            f"{sorted(TARGET_GROUPS)} or layer-name suffixes such as 'qkv'"
        )
    return names


def _peft_config(config: AdapterConfig, modules: list[str]):
    LoraConfig = _peft().LoraConfig

    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        target_modules=modules,
        lora_dropout=config.dropout,
        use_dora=config.kind == "dora",
        init_lora_weights=True,  # B = 0: the adapted model starts as its base
    )


def attach(model: nn.Module, config: AdapterConfig, name: str = "adapter") -> list[str]:
    """Inject adapter `name` into `model` (in place), freeze everything else; returns the
    adapted layers' names."""
    inject_adapter_in_model = _peft().inject_adapter_in_model

    modules = target_modules(model, config.targets)
    inject_adapter_in_model(_peft_config(config, modules), model, adapter_name=name)
    for parameter_name, parameter in model.named_parameters():
        parameter.requires_grad_(f".{name}." in parameter_name or parameter_name.endswith(f".{name}"))
    return modules


def adapter_state(model: nn.Module, name: str = "adapter") -> dict[str, torch.Tensor]:
    """The adapter's own weights (what an adapter checkpoint holds), keys without its name."""
    get_peft_model_state_dict = _peft().get_peft_model_state_dict

    return {key: value.detach().clone() for key, value in get_peft_model_state_dict(model, adapter_name=name).items()}


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's base weights (names, shapes and fp16 values, so a float16 bundle
    and its float32 source agree), 16 hex digits; adapters record their base's."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):  # called before any adapter is attached
        digest.update(key.encode())
        digest.update(str(tuple(value.shape)).encode())
        if value.is_floating_point():
            digest.update(value.detach().to(torch.float16).cpu().contiguous().view(torch.uint8).numpy().tobytes())
        else:
            digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def read_adapter(path: str | os.PathLike) -> tuple[Path, dict]:
    """(checkpoint folder, config) of an adapter checkpoint or run directory, checked."""
    from audiodiff.bundled import find_checkpoint

    try:
        folder = find_checkpoint(path, lambda: "")
        config = read_json(folder / CONFIG)
    except CheckpointError as error:
        raise AdapterError(f"adapter {path}: {error}") from None
    if config.get("kind") != ADAPTER_KIND:
        raise AdapterError(
            f"adapter {path}: its config.json says kind={config.get('kind')!r}, not an adapter; "
            "give the run directory of a training run with train.adapter"
        )
    for key in ("base", "base_digest", "adapter", "target_modules"):
        if key not in config:
            raise AdapterError(f"adapter {path}: config.json lacks {key!r}; the adapter checkpoint is damaged")
    return folder, config


def load_adapters(model: nn.Module, adapters: dict[str, float], base_digest: str) -> list[dict]:
    """Attach each adapter (path -> scale) to `model` and activate them all at their scales.
    An adapter trained on another base is refused naming both digests."""
    set_peft_model_state_dict = _peft().set_peft_model_state_dict

    loaded = []
    for index, (path, scale) in enumerate(adapters.items()):
        scale = check_scale(path, scale)
        folder, config = read_adapter(path)
        if config["base_digest"] != base_digest:
            raise AdapterError(
                f"adapter {path} was trained on {config['base']!r} (weights digest {config['base_digest']}); "
                f"this model's digest is {base_digest}; load it on its own base model"
            )
        name = f"adapter{index}"
        adapter = AdapterConfig(**config["adapter"])
        try:
            inject_adapter_in_model = _peft().inject_adapter_in_model

            inject_adapter_in_model(_peft_config(adapter, list(config["target_modules"])), model, adapter_name=name)
        except ValueError as error:
            raise AdapterError(f"adapter {path}: its target layers do not fit this model ({error})") from None
        try:
            state = load_state_dict(folder / WEIGHTS)
        except CheckpointError as error:
            raise AdapterError(f"adapter {path}: {error}") from None
        expected = set(_peft().get_peft_model_state_dict(model, adapter_name=name))
        if set(state) != expected:
            missing, extra = sorted(expected - set(state))[:3], sorted(set(state) - expected)[:3]
            raise AdapterError(
                f"adapter {path}: model.safetensors does not hold this adapter's weights "
                f"(missing {missing}, unexpected {extra}); the file is damaged or not an adapter"
            )
        result = set_peft_model_state_dict(model, state, adapter_name=name)
        if getattr(result, "unexpected_keys", None):
            raise AdapterError(f"adapter {path}: unexpected weights {result.unexpected_keys[:3]}")
        loaded.append({"path": str(path), "name": name, "scale": scale, "base": config["base"]})
    _activate(model, {item["name"]: item["scale"] for item in loaded})
    return loaded


def _activate(model: nn.Module, scales: dict[str, float]) -> None:
    LoraLayer = _peft().tuners.lora.LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            names = [name for name in scales if name in module.lora_A]
            module.set_adapter(names)
            for name in names:
                module.set_scale(name, scales[name])
    model.requires_grad_(False)


def merge_adapters(model: nn.Module) -> None:
    """Fold every active adapter into its layer's weights (sampling then costs the base's)."""
    LoraLayer = _peft().tuners.lora.LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer) and not module.merged:
            module.merge()


def check_scale(path, scale) -> float:
    """`scale` as a float; an AdapterError naming `path` where it is not finite or too large."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or abs(value) > MAX_SCALE:
        raise AdapterError(
            f"adapter {path}: scale {scale!r} must be a finite number within +-{MAX_SCALE:g} (1 = as trained, 0 = off)"
        )
    return value
