"""Spaces: where a diffusion model's clips live, and how audio gets in and out.

A space owns everything that depends on the representation: the shape of a clip of a given
length, encode (audio -> model space), decode (model space -> audio, through the vocoder or the
autoencoder where there is one), positions per second along the last axis, and how a mask over
samples maps onto that axis. The pipeline, the editing code, the data loader and the demo ask the
space; nothing outside this module tests which space it is.

    Wave    x: [n, channels, samples]                                  (1D U-Net)
    Mel     x: [n, channels, n_mels, frames]     one log-mel per channel, a vocoder per channel
    Latent  x: [n, channels * latent_channels, bands, latent_frames]  a mel autoencoder per channel

Audio is `[n, channels, samples]` float32 everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange

from audiodiff.audio import MelSpec

__all__ = ["AUTOENCODER_FOLDER", "SPACES", "Latent", "Mel", "Space", "Wave", "space_class", "space_for"]

AUTOENCODER_FOLDER = "autoencoder"  # a latent model's checkpoint carries its autoencoder here


class Space:
    """The base: a waveform-like identity space. Subclasses override what differs."""

    name = "base"
    description = "waveform"  # what the model's dimensions are (likelihoods are per dimension of it)
    title = "waveform"  # what a person reads on the model page
    parts: tuple[str, ...] = ()  # what a model of this space is joined with (`load_parts`)
    mel_spec: MelSpec | None = None
    vocoder = None
    autoencoder = None

    def __init__(self, sample_rate: int, channels: int = 1):
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)

    @classmethod
    def load_parts(cls, folder: Path, config, vocoder=None, autoencoder=None) -> dict:
        """The parts a model of this space needs, from `from_pretrained`'s arguments or the
        checkpoint: `{"vocoder": ..., "autoencoder": ...}` (none for waveforms)."""
        return {}

    @classmethod
    def join(cls, config, vocoder=None, autoencoder=None, where: str = "config") -> Space:
        """This space for a diffusion run config, joined with its parts (checked to fit)."""
        return cls.build(config.data, config.mel, vocoder=vocoder, autoencoder=autoencoder)

    # -- lengths and shapes

    @property
    def samples_per_position(self) -> int:
        """Audio samples per step along the model's last axis."""
        return 1

    def length(self, samples: int) -> int:
        """Positions along the last axis of a clip of `samples` audio samples."""
        return int(samples)

    def shape(self, n: int, samples: int) -> tuple[int, ...]:
        """The model-space shape of `n` clips of `samples` audio samples."""
        return (n, self.channels, self.length(samples))

    def frames(self, samples: int) -> int | None:
        """Mel frames of `samples` audio samples (what decode cuts to); None without a mel."""
        return None

    def whole_frames(self, samples: int) -> int:
        """The longest audio length <= `samples` that ends on a whole frame (the kept part of a
        continuation ends where the new part starts)."""
        return int(samples)

    def whole_positions(self, samples: int) -> int:
        """The longest audio length <= `samples` that is a whole number of model positions."""
        return int(samples)

    @property
    def min_samples(self) -> int:
        """The shortest audio this space can encode."""
        return 1

    def encode_padding(self, segment_samples: int) -> int:
        """Training: audio shorter than this is padded with silence before encoding (a mel of
        padded audio is silence; a mel padded afterwards would not be)."""
        return 0

    @property
    def frame_rate(self) -> float | None:
        """Control-curve frames per second in this space; None: the bundled default."""
        return None

    def curve_hop(self, default: int) -> int:
        """Audio samples per control-curve frame: the mel hop, else `default`."""
        return int(default)

    # -- encode and decode

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio `[n, channels, samples]` -> model space."""
        return audio

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """Training: one whole clip `[channels, samples]` -> its model-space features (the full
        length; the data loader crops segments from them)."""
        return audio

    def decode(self, x: torch.Tensor, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Model space -> (audio `[n, channels, samples]` at the model's level, unclamped; the
        first channel's normalised log-mel `[n, n_mels, frames]` or None)."""
        return x, None

    def decode_seamless(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode a clip that loops, so that its wrap-around is seamless in audio too."""
        return self.decode(x)

    def preview_mel(self, audio: torch.Tensor) -> torch.Tensor | None:
        """The first channel's normalised log-mel of audio, for display; None without a mel."""
        return None

    def mask(self, mask: torch.Tensor, length: int) -> torch.Tensor:
        """A sample mask `[samples]` (1 = regenerate) -> a mask over `length` model positions."""
        return mask[:length].float()

    def settings(self) -> dict:
        """What encoded features depend on (the feature cache's key)."""
        return {"representation": self.name, "sample_rate": self.sample_rate, "channels": self.channels}

    def to(self, device) -> Space:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sample_rate} Hz, {self.channels} channel{'s' * (self.channels > 1)})"


class Wave(Space):
    """Raw samples: the model's clips are the audio times a fixed `gain` (`data.gain`), which
    brings quiet data (drum one-shots kept at their recorded levels) near the unit variance the
    noise schedule assumes without a gain per clip.

    `mu_law` (`data.mu_law`, e.g. 255) compands each sample first, y = sign(x) ln(1 + mu|x|) /
    ln(1 + mu), as telephony's mu-law does. Decay tails and silences then sit far above the noise
    levels at which a waveform network stops removing noise, and decoding expands whatever noise
    is left there by the slope of the inverse at zero, ln(1 + mu) / mu (1/46, -33 dB, at mu = 255),
    while near full scale an error grows in proportion to the signal, where it is masked."""

    name = "wave"
    description = "waveform"

    def __init__(self, sample_rate: int, channels: int = 1, gain: float = 1.0, mu_law: float = 0.0):
        super().__init__(sample_rate, channels)
        self.gain = float(gain)
        self.mu_law = float(mu_law)
        if self.mu_law:
            self.description = f"mu-law ({self.mu_law:g}) waveform"

    @classmethod
    def build(cls, data, mel_spec: MelSpec | None = None, vocoder=None, autoencoder=None) -> Wave:
        return cls(data.sample_rate, data.channels, getattr(data, "gain", 1.0), getattr(data, "mu_law", 0.0))

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        if self.mu_law:
            audio = torch.sign(audio) * torch.log1p(self.mu_law * audio.abs()) / torch.log1p(torch.tensor(self.mu_law))
        return audio * self.gain if self.gain != 1.0 else audio

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        return self.encode(audio)

    def decode(self, x: torch.Tensor, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x / self.gain if self.gain != 1.0 else x
        if self.mu_law:
            # |y| <= 1.25 bounds a stray sample at 4x full scale instead of (1 + mu)^|y|
            y = x.clamp(-1.25, 1.25)
            x = torch.sign(y) * torch.expm1(y.abs() * torch.log1p(torch.tensor(self.mu_law))) / self.mu_law
        return x, None

    def settings(self) -> dict:
        return {
            **super().settings(),
            **({"gain": self.gain} if self.gain != 1.0 else {}),
            **({"mu_law": self.mu_law} if self.mu_law else {}),
        }


class Mel(Space):
    """Normalised log-mel spectrograms, one per channel; `vocoder` (per channel) makes audio."""

    name = "mel"
    parts = ("vocoder",)
    description = "normalised log-mel"
    title = "mel spectrogram"

    def __init__(self, mel_spec: MelSpec, channels: int = 1, vocoder=None):
        super().__init__(mel_spec.sample_rate, channels)
        self.mel_spec = mel_spec
        self.vocoder = vocoder

    @classmethod
    def build(cls, data, mel_spec: MelSpec, vocoder=None, autoencoder=None) -> Mel:
        if mel_spec is None:
            raise ValueError(f"a {cls.name} dataset needs a MelSpec")
        if mel_spec.sample_rate != data.sample_rate:
            raise ValueError(
                f"data.sample_rate={data.sample_rate} differs from mel.sample_rate={mel_spec.sample_rate}; make them equal"
            )
        return cls(mel_spec, data.channels, vocoder)

    @classmethod
    def load_parts(cls, folder: Path, config, vocoder=None, autoencoder=None) -> dict:
        """The vocoder: `vocoder` (a Vocoder, a path, a bundled name or "griffin_lim"), else the
        one the checkpoint names (only a sub-folder of its own or a bundled vocoder)."""
        from audiodiff.bundled import check_vocoder_name
        from audiodiff.checkpoint import CONFIG
        from audiodiff.vocoder import GriffinLimVocoder, Vocoder

        choice = vocoder if vocoder is not None else config.sampling.vocoder
        if isinstance(choice, (str, os.PathLike)):
            if vocoder is None:
                check_vocoder_name(str(choice), folder / CONFIG)
            if str(choice) == "griffin_lim":
                choice = GriffinLimVocoder(config.mel, config.sampling.griffin_lim_iters)
            else:
                local = folder / choice
                choice = Vocoder.from_pretrained(local if (local / CONFIG).is_file() else choice, config.mel)
        return {"vocoder": choice}

    @classmethod
    def join(cls, config, vocoder=None, autoencoder=None, where: str = "config") -> Mel:
        """Griffin-Lim when no vocoder is given; a vocoder with other mel settings is refused."""
        from audiodiff.vocoder import GriffinLimVocoder, check_compatible

        vocoder = vocoder or GriffinLimVocoder(config.mel, config.sampling.griffin_lim_iters)
        check_compatible(config.mel, vocoder)
        return cls.build(config.data, config.mel, vocoder=vocoder, autoencoder=autoencoder)

    @property
    def samples_per_position(self) -> int:
        return self.mel_spec.hop_length

    def length(self, samples: int) -> int:
        return max(1, self.mel_spec.num_frames(int(samples)))

    def shape(self, n: int, samples: int) -> tuple[int, ...]:
        return (n, self.channels, self.mel_spec.n_mels, self.length(samples))

    def frames(self, samples: int) -> int:
        return self.mel_spec.num_frames(int(samples))

    def whole_frames(self, samples: int) -> int:
        return self.mel_spec.num_samples(self.mel_spec.num_frames(int(samples)))

    def whole_positions(self, samples: int) -> int:
        return self.whole_frames(samples)

    @property
    def min_samples(self) -> int:
        return self.mel_spec.n_fft

    def encode_padding(self, segment_samples: int) -> int:
        return int(segment_samples)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.mel_spec.hop_length

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio `[n, channels, samples]` -> normalised log-mel `[n, channels, mels, frames]`."""
        frames = self.mel_spec.num_frames(audio.shape[-1])
        return self.mel_spec(audio[..., : self.mel_spec.num_samples(frames)])

    def curve_hop(self, default: int) -> int:
        return self.mel_spec.hop_length

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mel(audio)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mel_spec(audio)

    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mels `[n, channels, mels, frames]` -> audio `[n, channels, samples]`,
        each channel through the vocoder."""
        mel = mel.float().clamp(-1.0, 1.5)  # below -1 is below the log floor
        audio = self.vocoder(rearrange(mel, "n c m f -> (n c) m f"), clamp=False)  # the pipeline's guard scales
        return rearrange(audio, "(n c) 1 t -> n c t", c=mel.shape[1]), mel[:, 0].cpu()

    def decode(self, x: torch.Tensor, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.vocode(x)

    def decode_seamless(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Vocode three copies and keep the middle, so the wrap-around has the vocoder's context."""
        audio, mel = self.decode(torch.cat([x, x, x], dim=-1))
        samples, frames = audio.shape[-1] // 3, mel.shape[-1] // 3
        return audio[..., samples : 2 * samples], mel[..., frames : 2 * frames]

    def preview_mel(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mel(audio)[:, 0].cpu()

    def mask(self, mask: torch.Tensor, length: int) -> torch.Tensor:
        """A frame is regenerated where any of its samples is, widened by one frame each side: an
        STFT frame spans several hops (and a latent frame's decoder sees its neighbours)."""
        hop = self.samples_per_position
        padded = F.pad(mask.float(), (0, max(0, length * hop - mask.numel())))[: length * hop]
        frame_mask = padded.reshape(length, hop).amax(dim=1)
        return F.max_pool1d(frame_mask[None, None], 3, 1, 1)[0, 0]

    def settings(self) -> dict:
        return {**super().settings(), "mel": self.mel_spec.to_dict()}

    def to(self, device) -> Mel:
        if self.vocoder is not None:
            self.vocoder = self.vocoder.to(device)
        return self

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, {self.mel_spec.n_mels} mels, hop {self.mel_spec.hop_length})"


class Latent(Mel):
    """The latents of a mel autoencoder, one per channel (stacked on the channel axis); decoded
    latent -> mel -> vocoder."""

    name = "latent"
    parts = ("vocoder", "autoencoder")
    description = "autoencoder latent"
    title = "autoencoder latent (decoded to a mel spectrogram)"

    def __init__(self, mel_spec: MelSpec, autoencoder, channels: int = 1, vocoder=None):
        super().__init__(mel_spec, channels, vocoder)
        self.autoencoder = autoencoder

    @classmethod
    def build(cls, data, mel_spec: MelSpec, vocoder=None, autoencoder=None) -> Latent:
        if autoencoder is None:
            raise ValueError("a latent dataset needs the autoencoder that encodes its mels")
        return cls(mel_spec, autoencoder, data.channels, vocoder)

    @classmethod
    def load_parts(cls, folder: Path, config, vocoder=None, autoencoder=None) -> dict:
        """The vocoder as for mels, and the autoencoder: `autoencoder` (an Autoencoder or a
        path), else the checkpoint's `autoencoder/` sub-folder, else the bundled one it names."""
        from audiodiff.bundled import bundled_autoencoders, check_part_name
        from audiodiff.checkpoint import CONFIG
        from audiodiff.latent import Autoencoder

        if autoencoder is None or isinstance(autoencoder, (str, os.PathLike)):
            choice = autoencoder
            if choice is None:
                if (folder / AUTOENCODER_FOLDER / CONFIG).is_file():
                    choice = folder / AUTOENCODER_FOLDER
                else:
                    choice = config.data.autoencoder
                    check_part_name(
                        "data.autoencoder",
                        str(choice),
                        folder / CONFIG,
                        bundled_autoencoders,
                        "pass autoencoder= to from_pretrained to use another",
                    )
            autoencoder = Autoencoder.from_pretrained(choice)
        return {**super().load_parts(folder, config, vocoder), "autoencoder": autoencoder}

    @classmethod
    def join(cls, config, vocoder=None, autoencoder=None, where: str = "config") -> Latent:
        from audiodiff.checkpoint import CheckpointError

        if autoencoder is None:
            raise CheckpointError(f"{where}: a latent model needs its autoencoder (Pipeline(..., autoencoder=))")
        autoencoder.check_joins(config.mel, config.model.in_channels, where, config.data.channels)
        return super().join(config, vocoder, autoencoder, where)

    @property
    def time_down(self) -> int:
        return self.autoencoder.config.time_down

    @property
    def samples_per_position(self) -> int:
        return self.mel_spec.hop_length * self.time_down

    def length(self, samples: int) -> int:
        return -(-super().length(samples) // self.time_down)

    def shape(self, n: int, samples: int) -> tuple[int, ...]:
        latent_channels, bands, frames = self.autoencoder.latent_shape(self.mel_spec.n_mels, super().length(samples))
        return (n, self.channels * latent_channels, bands, frames)

    def whole_positions(self, samples: int) -> int:
        return int(samples) // self.samples_per_position * self.samples_per_position

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Latents cover the mel frames padded up to whole latent frames."""
        mel = self.mel(audio)
        latent = self.autoencoder.encode(rearrange(mel, "n c m f -> (n c) 1 m f"))
        return rearrange(latent, "(n c) k b f -> n (c k) b f", c=mel.shape[1])

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        latent = self.autoencoder.encode(self.mel_spec(audio)[:, None])
        return rearrange(latent, "c k b f -> (c k) b f").cpu()

    def decode(self, x: torch.Tensor, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latents -> mels (cut to `frames` when given) -> audio."""
        latent = rearrange(x, "n (c k) b f -> (n c) k b f", c=self.channels)
        mel = self.autoencoder.decode(latent, frames)
        return self.vocode(rearrange(mel, "(n c) 1 m f -> n c m f", c=self.channels))

    def settings(self) -> dict:
        return {**super().settings(), "autoencoder": self.autoencoder.digest()}

    def to(self, device) -> Latent:
        self.autoencoder = self.autoencoder.to(device)
        return super().to(device)


SPACES: dict[str, type[Space]] = {"wave": Wave, "mel": Mel, "latent": Latent}


def space_for(data, mel_spec: MelSpec | None = None, vocoder=None, autoencoder=None) -> Space:
    """The space a data config (`data.representation`, rate, channels) names, with its parts."""
    return space_class(data).build(data, mel_spec, vocoder=vocoder, autoencoder=autoencoder)


def space_class(data) -> type[Space]:
    """The space class a data config's `representation` names."""
    return SPACES[data.representation]
