"""Vocoder generators: normalised log-mel `[batch, n_mels, frames]` -> audio `[batch, 1, frames * hop]`.

Three families, chosen by name from `GENERATORS` through `build_generator`:

- HiFi-GAN V1/V2/V3 (Kong et al. 2020): transposed-convolution upsampling to the sample rate with
  multi-receptive-field residual blocks, weight-normalised, `tanh` output.
- ISTFT (Vocos-like, Siuzdenko et al. 2023): a ConvNeXt backbone at frame rate and a head that
  predicts a complex spectrum, turned into audio by `audiodiff.audio.istft`. Far cheaper than
  HiFi-GAN, because nothing runs at the sample rate except one inverse FFT.
- Source-filter (`source_filter`): the ISTFT generator plus a harmonic source at an F0 it
  predicts, shaped by a filter it predicts (`audiodiff.vocoder.source`), so harmonics keep their
  phase from frame to frame.

Every generator keeps its architecture in a small config dataclass; `generator.config` is that
config as a JSON-ready dict, and `build_generator(name, mel_spec, **generator.config)` rebuilds it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from audiodiff.audio import MelSpec, istft
from audiodiff.vocoder.source import PitchGrid, excitation_phase, excitation_spectrum

__all__ = [
    "GENERATORS",
    "Generator",
    "HiFiGAN",
    "HiFiGANConfig",
    "IstftGenerator",
    "IstftGeneratorConfig",
    "SourceFilterConfig",
    "SourceFilterGenerator",
    "SourceFilterParts",
    "build_generator",
    "derive_upsample_rates",
    "render_source_filter",
]

MAX_STAGES = 64  # upsampling stages, resblocks, dilations or ConvNeXt layers: far beyond any real vocoder


def _tuples(value: Any) -> Any:
    """Lists (as JSON gives them back) -> tuples, recursively, so configs compare and hash."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(item) for item in value)
    return value


def _config_dict(config: Any) -> dict:
    """A config dataclass as a JSON-ready dict (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return {name: plain(value) for name, value in dataclasses.asdict(config).items()}


class Generator(nn.Module):
    """What every generator offers: `forward(mel) -> audio`, `config`, `mel_spec`, `remove_weight_norm`."""

    name: str = "generator"
    settings: Any  # the config dataclass

    def __init__(self, mel_spec: MelSpec):
        super().__init__()
        self.mel_spec = mel_spec

    @property
    def config(self) -> dict:
        """The architecture as a JSON-ready dict; `build_generator(name, mel_spec, **config)` rebuilds it."""
        return _config_dict(self.settings)

    @property
    def hop_length(self) -> int:
        return self.mel_spec.hop_length

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())

    def remove_weight_norm(self) -> Generator:
        """Fold weight normalisation into plain weights for inference (same outputs, faster)."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self

    def _check_mel(self, mel: torch.Tensor) -> None:
        if mel.dim() != 3 or mel.shape[1] != self.mel_spec.n_mels:
            raise ValueError(
                f"{self.name}: expected a mel [batch, {self.mel_spec.n_mels}, frames], got {list(mel.shape)}"
            )


# --------------------------------------------------------------------------------------------
# HiFi-GAN


@dataclasses.dataclass
class HiFiGANConfig:
    """HiFi-GAN architecture. The defaults are the paper's V1; `upsample_rates` must multiply to the hop.

    resblock_type 1 stacks (dilated conv, conv) pairs; type 2 (V3) a single dilated conv per step.
    Each upsampling kernel must exceed its rate by an even number so the output length is exact.
    """

    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_type: int = 1
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    def __post_init__(self):
        for field in dataclasses.fields(self):
            setattr(self, field.name, _tuples(getattr(self, field.name)))
        problems = []
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            problems.append("upsample_rates and upsample_kernel_sizes need the same length")
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if rate < 1 or kernel < rate or (kernel - rate) % 2:
                problems.append(f"upsample kernel {kernel} must be >= rate {rate} and differ from it by an even amount")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            problems.append("resblock_kernel_sizes and resblock_dilation_sizes need the same length")
        if self.resblock_type not in RESBLOCKS:
            problems.append(f"resblock_type={self.resblock_type} is not one of {sorted(RESBLOCKS)}")
        lengths = [len(self.upsample_rates), len(self.resblock_kernel_sizes), *map(len, self.resblock_dilation_sizes)]
        if max(lengths) > MAX_STAGES:  # checked before anything is built: a hostile config could ask for millions
            problems.append(f"at most {MAX_STAGES} upsampling stages, resblocks and dilations")
        elif self.upsample_initial_channel >> len(self.upsample_rates) < 1:
            problems.append("upsample_initial_channel is too small to halve at every upsampling stage")
        if problems:
            raise ValueError("HiFiGANConfig: " + "; ".join(problems))

    def for_hop(self, hop_length: int) -> HiFiGANConfig:
        """This config with upsampling rates (and kernels = 2 x rate, +1 if odd) that multiply to `hop_length`."""
        if math.prod(self.upsample_rates) == hop_length:
            return self
        rates = derive_upsample_rates(hop_length, len(self.upsample_rates))
        kernels = tuple(2 * rate + rate % 2 for rate in rates)
        return dataclasses.replace(self, upsample_rates=rates, upsample_kernel_sizes=kernels)


def derive_upsample_rates(hop_length: int, num_stages: int, max_rate: int = 16) -> tuple[int, ...]:
    """Split `hop_length` into at most `num_stages` integer rates, largest first, as balanced as possible.

    256 with 4 stages -> (4, 4, 4, 4); 200 -> (5, 5, 4, 2); 300 -> (5, 5, 4, 3). Fails when a
    prime factor of the hop exceeds `max_rate` (the upsampling kernel would be huge).
    """
    factors, rest, prime = [], hop_length, 2
    while rest > 1:
        while rest % prime == 0:
            factors.append(prime)
            rest //= prime
        prime += 1
    if hop_length < 2 or max(factors) > max_rate:
        raise ValueError(
            f"HiFi-GAN cannot upsample by hop_length={hop_length}: it needs integer rates of at most "
            f"{max_rate} whose product is the hop (e.g. hops 128, 200, 240, 256, 300, 320, 441 work); "
            "choose such a hop in the MelSpec or pass `upsample_rates` explicitly"
        )
    stages = [1] * min(num_stages, len(factors))
    for factor in sorted(factors, reverse=True):
        smallest = min(range(len(stages)), key=stages.__getitem__)
        stages[smallest] *= factor
    if max(stages) > max_rate:
        raise ValueError(
            f"HiFi-GAN cannot split hop_length={hop_length} into {num_stages} rates of at most {max_rate}; "
            "pass `upsample_rates` (and kernels) explicitly"
        )
    return tuple(sorted(stages, reverse=True))


def _conv_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlockType1(nn.Module):
    """Residual steps of (leaky ReLU, dilated conv, leaky ReLU, conv); `[batch, channels, time]` in and out."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], slope: float = 0.1):
        super().__init__()
        self.slope = slope
        self.dilated = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_conv_padding(kernel_size, d)))
            for d in dilations
        )
        self.plain = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, padding=_conv_padding(kernel_size)))
            for _ in dilations
        )
        for conv in [*self.dilated, *self.plain]:
            _init_hifigan(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.dilated, self.plain):
            step = dilated(F.leaky_relu(x, self.slope))
            x = x + plain(F.leaky_relu(step, self.slope))
        return x


class ResBlockType2(nn.Module):
    """Residual steps of (leaky ReLU, dilated conv): HiFi-GAN V3's lighter block."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], slope: float = 0.1):
        super().__init__()
        self.slope = slope
        self.dilated = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_conv_padding(kernel_size, d)))
            for d in dilations
        )
        for conv in self.dilated:
            _init_hifigan(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated in self.dilated:
            x = x + dilated(F.leaky_relu(x, self.slope))
        return x


RESBLOCKS: dict[int, type[nn.Module]] = {1: ResBlockType1, 2: ResBlockType2}


def _init_hifigan(module: nn.Module, std: float = 0.01) -> None:
    """HiFi-GAN's initialisation: N(0, 0.01) weights (applied before weight norm splits them)."""
    weight = module.parametrizations.weight.original1 if parametrize.is_parametrized(module) else module.weight
    with torch.no_grad():
        weight.normal_(0.0, std)
        if parametrize.is_parametrized(module):  # keep g = |v| so the effective weight is the drawn one
            dims = tuple(range(1, weight.dim()))
            module.parametrizations.weight.original0.copy_(weight.norm(dim=dims, keepdim=True))


class MultiReceptiveField(nn.Module):
    """The average of parallel residual blocks with different kernels (HiFi-GAN's MRF)."""

    def __init__(self, channels: int, config: HiFiGANConfig):
        super().__init__()
        block = RESBLOCKS[config.resblock_type]
        self.blocks = nn.ModuleList(
            block(channels, kernel, dilations)
            for kernel, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.blocks[0](x)
        for block in self.blocks[1:]:
            total = total + block(x)
        return total / len(self.blocks)


class HiFiGAN(Generator):
    """HiFi-GAN generator: mel `[batch, n_mels, frames]` -> audio `[batch, 1, frames * hop]` in (-1, 1)."""

    name = "hifigan"

    def __init__(self, mel_spec: MelSpec, config: HiFiGANConfig | None = None):
        super().__init__(mel_spec)
        config = config or HiFiGANConfig()
        if math.prod(config.upsample_rates) != mel_spec.hop_length:
            raise ValueError(
                f"HiFi-GAN upsample_rates {list(config.upsample_rates)} multiply to "
                f"{math.prod(config.upsample_rates)}, but the mel hop is {mel_spec.hop_length}; "
                f"use HiFiGANConfig.for_hop({mel_spec.hop_length}) or matching rates"
            )
        self.settings = config
        channels = config.upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(mel_spec.n_mels, channels, 7, padding=3))
        self.upsamples = nn.ModuleList()
        self.fields = nn.ModuleList()
        for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes):
            upsample = nn.ConvTranspose1d(channels, channels // 2, kernel, stride=rate, padding=(kernel - rate) // 2)
            self.upsamples.append(weight_norm(upsample))
            _init_hifigan(self.upsamples[-1])
            channels //= 2
            self.fields.append(MultiReceptiveField(channels, config))
        self.conv_post = weight_norm(nn.Conv1d(channels, 1, 7, padding=3))
        _init_hifigan(self.conv_post)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        self._check_mel(mel)
        x = self.conv_pre(mel)
        for upsample, field in zip(self.upsamples, self.fields):
            x = field(upsample(F.leaky_relu(x, 0.1)))
        # The paper's final activation uses leaky ReLU's default slope (0.01), not 0.1.
        return torch.tanh(self.conv_post(F.leaky_relu(x, 0.01)))


# --------------------------------------------------------------------------------------------
# ISTFT generator (Vocos-like)


@dataclasses.dataclass
class IstftGeneratorConfig:
    """ConvNeXt backbone at frame rate + ISTFT head. `n_fft=None` uses the mel's n_fft; the hop is always the mel's.

    The defaults (1.6M parameters) are sized to run over 100x faster than real time at batch 1 on
    one free CPU core; Vocos itself is dim=512, intermediate_dim=1536, num_layers=8 (13.5M, about
    5x slower). Each 256/768 block costs about half as much as the fixed embedding + head + ISTFT.
    `max_magnitude` caps the predicted spectral magnitude (exp of the clamped log), which keeps
    early training stable; a full-scale sine peaks near n_fft/4, so the default leaves headroom.
    """

    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 3
    kernel_size: int = 7
    layer_scale_init: float | None = None  # None: 1 / num_layers
    n_fft: int | None = None
    max_magnitude: float = 1000.0
    # "absolute": the head predicts each frame's phase. "advance": it predicts each frame's
    # deviation from its bin centre's advance over a hop, and the phase is their running sum, so a
    # steady partial keeps its frequency by default (absolute phases that stay the same from frame
    # to frame put every partial at a multiple of the frame rate: recipes/vocoder-44k/README.md)
    phase: str = "absolute"

    def __post_init__(self):
        if self.phase not in ("absolute", "advance"):
            raise ValueError(f"IstftGeneratorConfig: phase={self.phase!r}; choose 'absolute' or 'advance'")
        if self.dim < 1 or self.intermediate_dim < 1 or not 0 <= self.num_layers <= MAX_STAGES:
            raise ValueError(
                f"IstftGeneratorConfig: dim, intermediate_dim must be positive; num_layers in 0..{MAX_STAGES}"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"IstftGeneratorConfig: kernel_size={self.kernel_size} must be odd (same padding)")


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> MLP (GELU) -> layer scale, residual; `[batch, dim, frames]` in and out."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, intermediate_dim)
        self.project = nn.Linear(intermediate_dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = rearrange(self.depthwise(x), "b c t -> b t c")
        y = self.project(F.gelu(self.expand(self.norm(y)))) * self.scale
        return x + rearrange(y, "b t c -> b c t")


class IstftHead(nn.Module):
    """Features `[batch, frames, dim]` -> audio `[batch, frames * hop]` via a predicted complex
    spectrum. With `advance`, the predicted phase is each frame's deviation from the bin centre's
    advance over a hop, summed over frames (`running_phase`)."""

    def __init__(self, dim: int, n_fft: int, hop_length: int, max_magnitude: float, advance: bool = False):
        super().__init__()
        if n_fft < hop_length or (n_fft - hop_length) % 2:
            raise ValueError(
                f"ISTFT head: n_fft={n_fft} must be >= hop {hop_length} and differ from it by an even number"
            )
        self.n_fft, self.hop_length, self.advance = n_fft, hop_length, advance
        self.max_log_magnitude = math.log(max_magnitude)
        self.out = nn.Linear(dim, n_fft + 2)  # log-magnitude and phase for n_fft//2 + 1 bins
        bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        centre = torch.remainder(2 * math.pi * bins * hop_length / n_fft, 2 * math.pi)
        self.register_buffer("centre_advance", centre, persistent=False)  # radians a hop, per bin

    @torch.no_grad()
    def zero_phase(self) -> None:
        """Set the phase outputs to zero whatever the input: an advance head then puts every bin at
        its centre frequency (where a head switched from absolute phases starts)."""
        bins = self.n_fft // 2 + 1
        self.out.weight[bins:].zero_()
        self.out.bias[bins:].zero_()

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-magnitude, phase output) `[batch, n_fft//2+1, frames]` each."""
        log_magnitude, phase = self.out(x).float().transpose(1, 2).chunk(2, dim=1)
        return log_magnitude.clamp(max=self.max_log_magnitude), phase

    def running_phase(self, deviation: torch.Tensor) -> torch.Tensor:
        """Each bin's phase at each frame (float64): the running sum of its centre advance plus
        the predicted deviation, from 0 before the first frame."""
        return torch.cumsum(deviation.double() + self.centre_advance[:, None], dim=-1)

    def complex_parts(self, log_magnitude: torch.Tensor, phase: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        magnitude = torch.exp(log_magnitude)
        phase = torch.remainder(phase, 2 * math.pi).float()
        return magnitude * torch.cos(phase), magnitude * torch.sin(phase)

    def spectrum(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts `[batch, n_fft//2+1, frames]` (exportable: no complex dtype)."""
        log_magnitude, phase = self.parts(x)
        return self.complex_parts(log_magnitude, self.running_phase(phase) if self.advance else phase)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        real, imag = self.spectrum(x)
        return istft(torch.complex(real, imag), self.n_fft, self.hop_length)


class IstftGenerator(Generator):
    """Vocos-style generator: mel `[batch, n_mels, frames]` -> audio `[batch, 1, frames * hop]` (not clipped)."""

    name = "istft"

    def __init__(self, mel_spec: MelSpec, config: IstftGeneratorConfig | None = None):
        super().__init__(mel_spec)
        config = config or IstftGeneratorConfig()
        self.settings = config
        layer_scale = config.layer_scale_init
        if layer_scale is None:
            layer_scale = 1 / max(config.num_layers, 1)
        self.embed = nn.Conv1d(mel_spec.n_mels, config.dim, config.kernel_size, padding=config.kernel_size // 2)
        self.embed_norm = nn.LayerNorm(config.dim)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, config.kernel_size, layer_scale)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.dim)
        self.head = IstftHead(
            config.dim,
            config.n_fft or mel_spec.n_fft,
            mel_spec.hop_length,
            config.max_magnitude,
            advance=config.phase == "advance",
        )
        self.apply(_init_vocos)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """The backbone: mel `[batch, n_mels, frames]` -> features `[batch, frames, dim]`."""
        self._check_mel(mel)
        x = self.embed(mel)
        x = rearrange(self.embed_norm(rearrange(x, "b c t -> b t c")), "b t c -> b c t")
        for block in self.blocks:
            x = block(x)
        return self.final_norm(rearrange(x, "b c t -> b t c"))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(mel))[:, None]

    @property
    def carries_phase(self) -> bool:
        """True where the phase is a running sum: GANVocoder then threads it through chunks."""
        return self.head.advance

    def render_chunk(
        self, mel: torch.Tensor, first: int, last: int, phase: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A chunk of mel (with context) whose running phase at frame `first` is `phase` (`[batch,
        bins]`; None: as it comes), and the running phase at frame `last` for the next chunk."""
        log_magnitude, deviation = self.head.parts(self.features(mel))
        running = self.head.running_phase(deviation)
        if phase is not None:
            running = running + (phase - running[..., first])[..., None]
        following = running[..., last] if last < running.shape[-1] else None
        real, imag = self.head.complex_parts(log_magnitude, running)
        return istft(torch.complex(real, imag), self.head.n_fft, self.head.hop_length)[:, None], following


# --------------------------------------------------------------------------------------------
# Source-filter generator: the ISTFT generator plus a harmonic source driven by a predicted F0


@dataclasses.dataclass
class SourceFilterConfig(IstftGeneratorConfig):
    """The ISTFT generator's fields, plus the pitch grid its F0 head predicts on (`PitchGrid`:
    `f0_min`..`f0_max` Hz in steps of `cents`) and the width of the Gaussian its targets are."""

    f0_min: float = 40.0
    f0_max: float = 1600.0
    cents: float = 20.0
    target_sigma_cents: float = 25.0
    source_gain_init: float = 0.0  # the harmonic filter's starting log-gain (0: as loud as a unit partial)

    def __post_init__(self):
        super().__post_init__()
        if self.phase != "absolute":
            raise ValueError(
                "SourceFilterConfig: phase='advance' is for the istft generator; the harmonic source carries its own"
            )
        PitchGrid(self.f0_min, self.f0_max, self.cents)  # raises on a bad grid


@dataclasses.dataclass
class SourceFilterParts:
    """What the network predicts per frame, before any sample-rate work (and what an exported
    graph outputs): the free spectrum (real, imag) and the harmonic filter (log-gain, phase)
    `[batch, n_fft//2+1, frames]`, pitch logits `[batch, frames, bins]`, voicing logit `[batch, frames]`."""

    real: torch.Tensor
    imag: torch.Tensor
    gain: torch.Tensor
    phase: torch.Tensor
    pitch_logits: torch.Tensor
    voicing_logit: torch.Tensor

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, field.name) for field in dataclasses.fields(self))


class SourceFilterGenerator(IstftGenerator):
    """An ISTFT generator whose spectrum adds a filtered harmonic source to the free one:

        spectrum = free + exp(gain) * e^(i phase) * STFT(pulse train at the F0)

    The backbone also predicts the F0 (a class over a `PitchGrid`) and whether a frame is voiced;
    the pulse train's phase is the running integral of that F0, so harmonics stay coherent across
    frames (NSF, Wang et al. 2019; DDSP, Engel et al. 2020: the source carries the pitch, the
    network only shapes it). Trained with the measured F0 of each clip as the source's F0 and as
    the pitch head's target (`forward(mel, f0)` returns the pitch loss with the audio); at inference
    the F0 is the head's. Trained from scratch: grown from a trained `istft` generator with the
    source starting near silent, it never turned the source up (the free spectrum already drew the
    harmonics; recipes/vocoder-16k/README.md)."""

    name = "source_filter"
    carries_phase = True  # GANVocoder threads the excitation phase through chunks

    def __init__(self, mel_spec: MelSpec, config: SourceFilterConfig | None = None):
        config = config or SourceFilterConfig()
        super().__init__(mel_spec, config)
        self.grid = PitchGrid(config.f0_min, config.f0_max, config.cents)
        bins = self.head.n_fft // 2 + 1
        self.pitch_head = nn.Linear(config.dim, self.grid.bins + 1)  # classes + a voicing logit
        self.harmonic_head = nn.Linear(config.dim, 2 * bins)  # log-gain and phase of the filter
        for layer in (self.pitch_head, self.harmonic_head):
            _init_vocos(layer)
        with torch.no_grad():
            self.harmonic_head.bias[:bins].fill_(config.source_gain_init)

    def parts(self, mel: torch.Tensor) -> SourceFilterParts:
        features = self.features(mel)
        real, imag = self.head.spectrum(features)
        gain, phase = self.harmonic_head(features).float().transpose(1, 2).chunk(2, dim=1)
        pitch = self.pitch_head(features).float()
        return SourceFilterParts(
            real, imag, gain.clamp(max=self.head.max_log_magnitude), phase, pitch[..., :-1], pitch[..., -1]
        )

    def pitch(self, parts: SourceFilterParts) -> tuple[torch.Tensor, torch.Tensor]:
        """The predicted F0 in Hz and voicing in [0, 1], both `[batch, frames]`."""
        return self.grid.decode(parts.pitch_logits), torch.sigmoid(parts.voicing_logit)

    def render(
        self, parts: SourceFilterParts, f0: torch.Tensor, voicing: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Parts and the source's F0 and voicing `[batch, frames]` -> audio `[batch, 1, frames * hop]`."""
        return render_source_filter(
            parts, f0, voicing, self.head.n_fft, self.hop_length, self.mel_spec.sample_rate, start
        )

    def render_chunk(
        self, mel: torch.Tensor, first: int, last: int, phase: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A chunk of mel (with context) whose excitation has `phase` (cycles, `[batch]`; None: 0)
        at frame `first`, and the excitation's phase at frame `last`, where the next chunk takes over."""
        if phase is None:
            phase = mel.new_zeros(mel.shape[0], dtype=torch.float64)
        hop = self.hop_length
        parts = self.parts(mel)
        f0, voicing = self.pitch(parts)
        phases = excitation_phase(f0, hop, self.mel_spec.sample_rate)
        start = phase - phases[:, first * hop]
        following = phases[:, last * hop] + start if last * hop < phases.shape[-1] else phase
        return self.render(parts, f0, voicing, start), following

    def pitch_loss(self, parts: SourceFilterParts, f0: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the pitch classes against a Gaussian at the measured F0 (voiced frames)
        plus binary cross-entropy of the voicing (frames where the F0 is known: NaN = not known)."""
        known = torch.isfinite(f0)
        voiced = known & (f0 > 0)
        voicing = (
            F.binary_cross_entropy_with_logits(parts.voicing_logit[known], voiced[known].float())
            if known.any()
            else f0.new_zeros(())
        )
        if not voiced.any():
            return voicing
        targets = self.grid.targets(f0[voiced], self.settings.target_sigma_cents)
        pitch = -(targets * torch.log_softmax(parts.pitch_logits[voiced], dim=-1)).sum(-1).mean()
        return pitch + voicing

    def forward(self, mel: torch.Tensor, f0: torch.Tensor | None = None, start: torch.Tensor | None = None):
        """Inference: mel -> audio, with the predicted F0. Training: with the measured `f0`
        `[batch, frames]` (Hz, 0 unvoiced, NaN unknown) as the source -> (audio, pitch loss)."""
        parts = self.parts(mel)
        if f0 is None:  # the source follows the pitch head, which learns only from F0 targets
            f0, voicing = self.pitch(parts)
            return self.render(parts, f0.detach(), voicing.detach(), start)
        known = torch.nan_to_num(f0.float(), nan=0.0)
        return self.render(parts, known, (known > 0).float(), start), self.pitch_loss(parts, f0.float())


def render_source_filter(
    parts: SourceFilterParts,
    f0: torch.Tensor,
    voicing: torch.Tensor,
    n_fft: int,
    hop_length: int,
    sample_rate: int,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """The sample-rate half of the source-filter generator, shared with exported graphs: the
    pulse train at `f0`, its STFT through the predicted filter, plus the free spectrum, inverse STFT."""
    source = excitation_spectrum(f0, voicing, n_fft, hop_length, sample_rate, start)
    magnitude = torch.exp(parts.gain)
    spectrum = torch.complex(parts.real, parts.imag) + torch.polar(magnitude, parts.phase) * source
    return istft(spectrum, n_fft, hop_length)[:, None]


def _init_vocos(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------------------------
# Registry


@dataclasses.dataclass(frozen=True)
class GeneratorPreset:
    """A generator class and the config a name stands for."""

    cls: type[Generator]
    config: Any


GENERATORS: dict[str, GeneratorPreset] = {
    "hifigan_v1": GeneratorPreset(HiFiGAN, HiFiGANConfig()),
    "hifigan_v2": GeneratorPreset(HiFiGAN, HiFiGANConfig(upsample_initial_channel=128)),
    "hifigan_v3": GeneratorPreset(
        HiFiGAN,
        HiFiGANConfig(
            upsample_rates=(8, 8, 4),
            upsample_kernel_sizes=(16, 16, 8),
            upsample_initial_channel=256,
            resblock_type=2,
            resblock_kernel_sizes=(3, 5, 7),
            resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
        ),
    ),
    "istft": GeneratorPreset(IstftGenerator, IstftGeneratorConfig()),
    "source_filter": GeneratorPreset(SourceFilterGenerator, SourceFilterConfig()),
}


def build_generator(name: str, mel_spec: MelSpec, **overrides: Any) -> Generator:
    """The generator `name` for `mel_spec`, with config fields replaced by `overrides`.

    HiFi-GAN presets adapt their upsampling rates to the mel hop unless `upsample_rates` is given.
    """
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; valid names are {sorted(GENERATORS)}")
    preset = GENERATORS[name]
    valid = {field.name for field in dataclasses.fields(preset.config)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"generator {name!r}: unknown config fields {unknown}; valid fields are {sorted(valid)}")
    config = dataclasses.replace(preset.config, **overrides)
    if isinstance(config, HiFiGANConfig) and "upsample_rates" not in overrides:
        config = config.for_hop(mel_spec.hop_length)
    generator = preset.cls(mel_spec, config)
    generator.name = name
    return generator
