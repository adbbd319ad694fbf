"""The diffusion training task: data, U-Net, v-objective with conditioning dropout, previews."""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
import sys
from pathlib import Path

import torch
import torch.nn as nn

from audiodiff.audio import save_audio
from audiodiff.config import DiffusionRunConfig, TrainConfig, to_dict
from audiodiff.data.dataset import DatasetError, collate, make_dataset, scan_items
from audiodiff.diffusion.objective import OBJECTIVES
from audiodiff.models.conditioning import tokenize
from audiodiff.models.diffusion import build_model
from audiodiff.plots import plot_spectrograms
from audiodiff.spaces import AUTOENCODER_FOLDER, space_class
from audiodiff.train.init import adopt_source, load_source, load_source_weights
from audiodiff.train.trainer import StepContext, adamw

__all__ = ["DiffusionTask", "resolve_conditioning"]

MAX_TEXT_VOCAB = 4000


def resolve_conditioning(config: DiffusionRunConfig, items) -> DiffusionRunConfig:
    """Fill `auto` conditioning (label set, caption vocabulary, number ranges) from the data."""
    cond = config.conditioning
    labels = cond.labels
    if labels == "auto":
        labels = sorted({item.label for item in items if item.label is not None}, key=_natural)
        if not labels:
            raise DatasetError(
                "conditioning.labels=auto, but no item has a label; set data.label_from_folder or use a manifest"
            )
    text = cond.text
    if text is not None and text.encoder == "builtin" and not text.vocab:
        counts = collections.Counter(word for item in items for word in tokenize(item.text or ""))
        if not counts:
            raise DatasetError(
                "text conditioning is on, but no item has a caption; add `text` to the manifest or .txt sidecars"
            )
        text = dataclasses.replace(text, vocab=[w for w, _ in counts.most_common(MAX_TEXT_VOCAB)])
    numbers = {}
    for name, span in cond.numbers.items():
        if span in ("auto", [], None):
            values = [item.numbers.get(name, math.nan) for item in items]
            values = [v for v in values if math.isfinite(v)]
            if not values:
                raise DatasetError(f"conditioning.numbers.{name}=auto, but no item has a '{name}' value")
            span = [min(values), max(values)]
        numbers[name] = [float(span[0]), float(span[1])]
    return dataclasses.replace(
        config, conditioning=dataclasses.replace(cond, labels=list(labels), text=text, numbers=numbers)
    )


def load_autoencoder(config: DiffusionRunConfig, given=None):
    """The autoencoder of a latent run (`given`, or `data.autoencoder` loaded), checked against
    the run's MelSpec and input channels; None for mel and waveform runs."""
    if "autoencoder" not in space_class(config.data).parts:
        return None
    from audiodiff.checkpoint import CheckpointError
    from audiodiff.config import ConfigError
    from audiodiff.latent import Autoencoder

    if given is None:
        try:
            given = Autoencoder.from_pretrained(config.data.autoencoder)
        except CheckpointError as error:
            raise ConfigError(f"data.autoencoder={config.data.autoencoder!r}: {error}") from None
    given.check_joins(
        config.mel, config.model.in_channels, f"data.autoencoder={config.data.autoencoder!r}", config.data.channels
    )
    return given


def _natural(label: str):
    return (0, int(label)) if label.isdigit() else (1, label)


class DiffusionTask:
    def __init__(self, config: DiffusionRunConfig, verbose: bool = True, autoencoder=None):
        """`autoencoder`: the latents' (a distilled student's is its teacher's); None loads
        `data.autoencoder` for a latent run (a fine-tuned latent model keeps its source's)."""
        numbers = list(
            dict.fromkeys([*config.data.number_fields, *config.conditioning.numbers, *config.conditioning.extra])
        )
        curves = list(dict.fromkeys([*config.data.curves, *config.conditioning.curves]))
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, number_fields=numbers, curves=curves)
        )
        self.source = None
        if config.train.init_from:
            self.source = load_source(config.train.init_from)
            if config.train.adapter is not None:
                # an adapter rides on its base exactly as it is: the base's conditions too (values the
                # data lacks are null), so the adapter loads onto the very model it names
                base = self.source.config.conditioning
                fields = [*base.numbers, *base.extra]
                data = dataclasses.replace(config.data, number_fields=fields, curves=list(base.curves))
                config = dataclasses.replace(config, conditioning=base, data=data)
            config = adopt_source(config, self.source.config, config.train.init_from, verbose)
            autoencoder = autoencoder or self.source.autoencoder
        self.autoencoder = load_autoencoder(config, autoencoder)
        self.verbose = verbose
        items, self.report = scan_items(config.data)
        if verbose:
            print(self.report, file=sys.stderr)
        self.config = resolve_conditioning(config, items)
        self.dataset = make_dataset(
            items, self.config.data, self.config.mel, self.config.conditioning.labels, self.autoencoder
        )
        self.num_workers = config.data.num_workers
        self.preview_vocoder = None

    def collate(self, rows: list[dict]) -> dict:
        return collate(rows)

    def build(self, device: torch.device, cfg: TrainConfig) -> None:
        self.device = device
        self.preview_count = cfg.preview_count
        self.model = build_model(self.config).to(device)
        if self.source is not None:
            load_source_weights(self.model, self.source.model, self.config.train.init_from, self.verbose)
        self.adapter = None
        if cfg.adapter is not None:  # only the adapter trains; the base stays as loaded
            from audiodiff.adapters import AdapterConfig, attach, weights_digest

            self.adapter = AdapterConfig(**cfg.adapter)
            self.base_digest = weights_digest(self.model)
            self.adapted = attach(self.model, self.adapter)
            if self.verbose:
                count = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
                total = sum(p.numel() for p in self.model.parameters())
                print(f"adapter: {self.adapter.kind} rank {self.adapter.rank} on {len(self.adapted)} layers, "
                      f"{count:,} trainable parameters ({100 * count / total:.2f}%)", file=sys.stderr)  # fmt: skip
        self.net: nn.Module = self.model
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.dim() < 2 or "norm" in name or "embed" in name else decay).append(param)
        self.optimizer = adamw(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], cfg
        )
        self.modules = {"model": self.model}
        self.optimizers = {"model": self.optimizer}
        self.ema_module = self.model

    def wrap(self, wrap_fn) -> None:
        self.net = wrap_fn(self.model)

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, float]:
        x = batch["x"].to(self.device, non_blocking=True)
        cond = self.model.conditioner.drop(batch, ctx.generator, self.device)
        with ctx.autocast():
            loss = OBJECTIVES[self.config.diffusion.objective].loss(
                self.net, x, cond, self.config.diffusion.shift, ctx.generator
            )
        ctx.backward(loss, self.model, self.optimizer)
        return {"loss": float(loss.detach())}

    def export_config(self) -> dict:
        if self.adapter is not None:
            from audiodiff.adapters import ADAPTER_KIND

            return {
                "kind": ADAPTER_KIND,
                "base": self.config.train.init_from,
                "base_digest": self.base_digest,
                "adapter": dataclasses.asdict(self.adapter),
                "target_modules": self.adapted,
                "run": to_dict(self.config),
                "dataset": self.report.to_dict(),
            }
        data = to_dict(self.config)
        data["dataset"] = self.report.to_dict()
        return data

    def export_weights(self, module: nn.Module) -> dict:
        """What the checkpoint's model.safetensors holds: the weights, or an adapter run's adapter."""
        if self.adapter is not None:
            from audiodiff.adapters import adapter_state

            return adapter_state(module)
        return module.state_dict()

    def write_extras(self, folder: Path) -> None:
        """A latent model's checkpoint carries its autoencoder (`autoencoder/`), so it loads anywhere."""
        if self.autoencoder is not None:
            self.autoencoder.save_pretrained(folder / AUTOENCODER_FOLDER)

    def preview(self, module: nn.Module, out_dir: Path, step: int) -> None:
        """A few samples from the EMA weights: wavs and one spectrogram grid."""
        from audiodiff.pipeline import Pipeline  # previews are inference: the pipeline composes them

        config = self.config
        wants_vocoder = "vocoder" in space_class(config.data).parts
        if wants_vocoder and config.sampling.vocoder != "griffin_lim" and self.preview_vocoder is None:
            from audiodiff.vocoder import Vocoder

            self.preview_vocoder = Vocoder.from_pretrained(config.sampling.vocoder, config.mel)
        autoencoder = (
            self.autoencoder
            if self.autoencoder is None or self.device.type == "cpu"
            else copy.deepcopy(self.autoencoder)
        )
        pipe = Pipeline(
            module, config, self.preview_vocoder, device=self.device, autoencoder=autoencoder, channels_last=False
        )
        count = self.preview_count
        kwargs, titles = self._preview_conditions(count)
        out = pipe.generate(n=count, seed=1234, steps=min(config.sampling.steps, 25), **kwargs)
        module.train(False)
        out_dir.mkdir(parents=True, exist_ok=True)
        for index, clip in enumerate(out.audio):
            save_audio(out_dir / f"sample_{index}.wav", clip, out.sample_rate)
        plot_spectrograms(list(out.audio), out.sample_rate, out_dir / "spectrograms.png", titles)

    def _preview_conditions(self, count: int) -> tuple[dict, list[str]]:
        cond = self.config.conditioning
        items = self.dataset.items
        kwargs: dict = {}
        titles = [""] * count
        if cond.labels:
            labels = [cond.labels[i % len(cond.labels)] for i in range(count)]
            kwargs["label"] = labels
            titles = labels
        elif cond.text:
            texts = [items[(i * 7919) % len(items)].text or "" for i in range(count)]
            kwargs["text"] = texts
            titles = [t[:40] for t in texts]
        for name, (low, high) in cond.numbers.items():
            values = [low + (high - low) * (i + 0.5) / count for i in range(count)]
            kwargs[name] = values
            titles = [f"{t} {name}={v:g}".strip() for t, v in zip(titles, values)]
        return kwargs, titles
