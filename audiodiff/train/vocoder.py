"""The vocoder training task: audio segments, their mels, a generator and discriminators,
one GAN step per batch (`gan_step`, through the trainer's `StepContext.backward`), previews of
real clips resynthesised."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch
import torch.nn as nn

from audiodiff.audio import save_audio
from audiodiff.config import TrainConfig, VocoderRunConfig, to_dict
from audiodiff.data.dataset import collate, make_dataset, scan_items
from audiodiff.plots import plot_spectrograms
from audiodiff.train.init import InitError
from audiodiff.train.trainer import StepContext, adamw
from audiodiff.vocoder.base import Vocoder
from audiodiff.vocoder.discriminators import Discriminators
from audiodiff.vocoder.gan import GANVocoder
from audiodiff.vocoder.generators import SourceFilterGenerator, build_generator
from audiodiff.vocoder.losses import mel_l1_loss
from audiodiff.vocoder.training import gan_step, random_gain

__all__ = ["GANTask", "VocoderTask"]


def load_source_generator(config: VocoderRunConfig, verbose: bool = True) -> tuple[VocoderRunConfig, nn.Module]:
    """`train.init_from` for a vocoder run: the named GAN vocoder's generator, and the run's config
    with that generator's architecture and MelSpec (fine-tuning needs both; it says so if they change)."""
    from audiodiff.checkpoint import CheckpointError

    name = config.train.init_from
    if name == "griffin_lim":
        raise InitError(
            "train.init_from='griffin_lim' has no weights to start from; name a trained GAN vocoder (e.g. vocoder-16k)"
        )
    try:
        source = Vocoder.from_pretrained(name)
    except CheckpointError as error:
        raise InitError(f"train.init_from={name!r}: {error}") from None
    if not isinstance(source, GANVocoder):
        raise InitError(
            f"train.init_from={name!r} is a {source.kind} vocoder with no weights; name a trained GAN vocoder"
        )
    generator_config = dict(source.generator.config)
    if "phase" in config.model.generator_config and source.generator.name == "istft":
        # how the head's phase outputs are read (absolute or advance): the same weights either way
        generator_config["phase"] = config.model.generator_config["phase"]
    model = dataclasses.replace(config.model, generator=source.generator.name, generator_config=generator_config)
    changed = [
        section
        for section, old, new in (("model", config.model, model), ("mel", config.mel, source.mel_spec))
        if to_dict(old) != to_dict(new)
    ]
    if changed and verbose:
        print(
            f"init_from {name}: using its generator's {' and '.join(changed)} settings (fine-tuning needs the same architecture)",
            file=sys.stderr,
        )
    return dataclasses.replace(config, model=model, mel=source.mel_spec), source.generator


class GANTask:
    """What the GAN tasks (vocoders, upsamplers) share: a generator (`self.generator`, built by
    the task) beside discriminators, one AdamW each, the generator averaged and exported."""

    def collate(self, rows: list[dict]) -> dict:
        return collate(rows)

    def join_discriminators(self, names, options: dict, device: torch.device, cfg: TrainConfig) -> None:
        self.discriminators = Discriminators(tuple(names), options).to(device)
        self.g_net: nn.Module = self.generator
        self.d_net: nn.Module = self.discriminators
        self.optim_g = adamw(self.generator.parameters(), cfg)
        self.optim_d = adamw(self.discriminators.parameters(), cfg)
        self.modules = {"generator": self.generator, "discriminators": self.discriminators}
        self.optimizers = {"generator": self.optim_g, "discriminators": self.optim_d}
        self.ema_module = self.generator

    def wrap(self, wrap_fn) -> None:
        self.g_net = wrap_fn(self.generator)
        self.d_net = wrap_fn(self.discriminators)


class VocoderTask(GANTask):
    def __init__(self, config: VocoderRunConfig, verbose: bool = True):
        self.source = None
        if config.train.init_from:
            config, self.source = load_source_generator(config, verbose)
        # a source-filter generator's source follows each clip's measured F0 while its pitch head
        # learns it; with loss.pitch 0 it follows its own head and no clip's F0 is measured
        self.needs_f0 = config.model.generator == SourceFilterGenerator.name and config.loss.pitch > 0
        if self.needs_f0 and "f0" not in config.data.curves:
            config = dataclasses.replace(
                config, data=dataclasses.replace(config.data, curves=[*config.data.curves, "f0"])
            )
        self.config = config
        self.mel_spec = config.mel
        items, self.report = scan_items(config.data)
        if verbose:
            print(self.report, file=sys.stderr)
        self.dataset = make_dataset(items, config.data, None, curve_hop=config.mel.hop_length)
        self.num_workers = config.data.num_workers
        self.preview_items = items[:: max(1, len(items) // 4)][:4]

    def build(self, device: torch.device, cfg: TrainConfig) -> None:
        model = self.config.model
        self.device = device
        self.generator = build_generator(model.generator, self.mel_spec, **model.generator_config).to(device)
        if self.source is not None:
            try:
                self.generator.load_state_dict(self.source.state_dict())
            except RuntimeError:  # a generator saved folded (weight norm removed) cannot train as it was built
                raise InitError(
                    f"train.init_from={cfg.init_from!r}: its weights are folded (weight norm removed) and do not match "
                    f"a trainable {model.generator} generator; start from an unfolded checkpoint (a run directory)"
                ) from None
            switched = model.generator_config.get("phase") == "advance" and self.source.config.get("phase") != "advance"
            if switched:
                # an absolute head's phase outputs mean nothing as deviations: start them at zero
                # (re-read as they were, 12 minutes left sines off by up to 800 cents:
                # recipes/vocoder-44k/README.md)
                self.generator.head.zero_phase()
        self.join_discriminators(model.discriminators, model.discriminator_options, device, cfg)

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, float]:
        audio = batch["x"].to(self.device)  # [batch, 1, samples]
        frames = self.mel_spec.num_frames(audio.shape[-1])
        audio = audio[..., : self.mel_spec.num_samples(frames)]
        audio = random_gain(audio, self.config.gain_db)  # level augmentation, one gain per segment
        mel = self.mel_spec(audio[:, 0])
        f0 = batch["f0"].to(self.device)[:, :frames] if self.needs_f0 else None
        losses = gan_step(
            self.g_net,
            self.d_net,
            self.optim_g,
            self.optim_d,
            mel,
            audio,
            self.mel_spec,
            self.config.loss,
            adversarial=ctx.step >= self.config.loss.discriminator_start,
            ctx=ctx,
            f0=f0,
        )
        losses.pop("skipped_updates")  # ctx.backward has told the trainer (bad_step)
        return losses

    def export_config(self) -> dict:
        info = {"recipe": to_dict(self.config), "dataset": self.report.to_dict()}
        return GANVocoder(self.generator, info).config()  # it sets eval mode; gan_step sets train again

    @torch.no_grad()
    def preview(self, module: nn.Module, out_dir: Path, step: int) -> None:
        """Real clips and their resynthesis (wavs), a spectrogram grid and the mel L1."""
        vocoder = GANVocoder(module)  # in eval mode
        out_dir.mkdir(parents=True, exist_ok=True)
        clips, titles, distances = [], [], []
        for index, item in enumerate(self.preview_items):
            audio = self.dataset.loader.segment(item, seed=index)
            audio = audio[:, : self.mel_spec.num_samples(self.mel_spec.num_frames(audio.shape[-1]))].to(self.device)
            fake = vocoder.round_trip(audio)[0]
            distances.append(mel_l1_loss(fake[None], audio[None], self.mel_spec).item())
            save_audio(out_dir / f"real_{index}.wav", audio.cpu(), self.mel_spec.sample_rate)
            save_audio(out_dir / f"vocoded_{index}.wav", fake.cpu(), self.mel_spec.sample_rate)
            clips += [audio.cpu(), fake.cpu()]
            titles += [f"real {index}", f"vocoded {index} (mel L1 {distances[-1]:.3f})"]
        plot_spectrograms(clips, self.mel_spec.sample_rate, out_dir / "spectrograms.png", titles, columns=2)
        (out_dir / "mel_l1.txt").write_text(f"{sum(distances) / max(1, len(distances)):.4f}\n")
        module.train()
